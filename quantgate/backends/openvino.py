"""OpenVINO variants: the optimum-intel IR export, NNCF static int8 and weight-only int8 / int4.

Static int8 runs optimum-intel's OVQuantizer (NNCF post-training quantization) with
calibration inputs from the local train split -- not sentence-transformers'
`export_static_quantized_openvino_model`, which downloads glue/sst2 from the hub and
calibrates a reranker on single sentences.

Accuracy-controlled int8 (`openvino-qint8-ac`) is built in quantgate.backends.openvino_ac, weight-only
compression (`openvino-int8-wo`, `openvino-int4-wo`) in quantgate.backends.openvino_wo.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from quantgate.backends.common import (
    BuildContext,
    copy_artifact,
    cpu_only,
    estimate,
    feed_position_ids,
    load_st,
    release,
    remove_files,
    tokenize,
)
from quantgate.backends.openvino_ir import op_precision
from quantgate.core import machine
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec
from quantgate.progress import Tracked

PLAIN = "openvino/openvino_model.xml"
QINT8 = "openvino/openvino_model_qint8_quantized.xml"
RUNTIME = "openvino"
# openvino-qint8-ac (quantgate.backends.openvino_ac): enters its cache key, so a change of method rebuilds it
TUNING_METHOD = "nncf accuracy control: compressed weights validated, groups ranked coarse to fine"
WEIGHT_FILES = ("*.xml", "*.bin")
skip_reason = cpu_only


def cpu_bf16_missing() -> str | None:
    """Why OpenVINO's CPU plugin cannot run bf16 here, or None: it computes in bf16 where the CPU has native bf16 (its
    default there), else it runs a bf16 request in f32."""
    flags = machine.NATIVE_FLAGS["bf16"]
    if any(f in machine.cpu_flags() for f in flags):
        return None
    return (f"needs a CPU with native bf16 ({' or '.join(flags)}; this CPU: {machine.cpu_summary()}): without it "
            "OpenVINO's CPU plugin runs a bf16 request in f32, which the f32 variant already gates")


REQUIREMENTS = {"cpu-bf16": cpu_bf16_missing}  # what a spec's `requires` may name besides machine's own


def model_skip(spec: VariantSpec, model) -> str | None:
    """optimum-intel's exporter must export the model's task (its TasksManager, OpenVINO export configs)."""
    from quantgate.backends import support

    return support.known_reason(spec.id, model) or support.export_reason("openvino", "optimum-intel", model)


__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate", "RUNTIME", "runtime_facts", "ran_with", "header_lines"]


def runtime_facts(model) -> dict[str, Any] | None:
    """What the compiled model runs with, read back rather than the options asked for (the CPU plugin may differ
    from the hint: bf16 falls back to f32 on a CPU without it), or None when the model is not OpenVINO's."""
    compiled = getattr(getattr(model, "transformers_model", None), "request", None)
    if hasattr(compiled, "get_compiled_model"):  # a stateful IR's InferRequest (optimum-intel OVModelForCausalLM)
        compiled = compiled.get_compiled_model()
    if not hasattr(compiled, "get_property"):  # an OpenVINO CompiledModel (optimum-intel OVModel)
        return None
    return {"runtime": RUNTIME,
            "inference_precision": compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "execution_mode": str(compiled.get_property("EXECUTION_MODE_HINT")).rsplit(".", 1)[-1],
            "threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}


def ran_with(runtime: dict[str, Any]) -> str:
    return f"OpenVINO {runtime['inference_precision']}"


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    """The precision hint, and the run's thread budget as OpenVINO inference threads without CPU pinning.

    OpenVINO's CPU plugin computes in bf16 by default on CPUs with AVX512-BF16/AMX: the precision the
    variant is named for is pinned, so `openvino` is fp32 on every machine. OpenVINO pins its threads
    (and the caller's) by default, which slows every other runtime in the process afterwards
    (torch-fp32 29 -> 22 items/s measured here)."""
    config = {"INFERENCE_PRECISION_HINT": ctx.spec.opts.get("inference_precision", "f32")}
    if ctx.threads:
        config.update({"INFERENCE_NUM_THREADS": str(ctx.threads), "ENABLE_CPU_PINNING": "NO"})
    return {"ov_config": config}


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    """Build peaks measured for a 110M-parameter model, in fp32 weights over the run's baseline
    (docs/measurements.md): export 3.9, static int8 5.9, accuracy control 7.4 (two ranking workers; 6.6 with one);
    compiled models 1.5 (f32), 0.8 (int8)."""
    if spec.opts.get("accuracy_control"):
        return estimate(spec, fp32_weight_bytes, build=7.8, load=1.0)
    if spec.opts.get("quantize") == "static":
        return estimate(spec, fp32_weight_bytes, build=6.2, load=1.0)
    return estimate(spec, fp32_weight_bytes, build=4.2, load=1.8)


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    if ctx.spec.opts.get("quantize") == "weights":
        from quantgate.backends import openvino_wo

        return openvino_wo.build(ctx, out, PLAIN, ov_config(ctx))
    if ctx.spec.opts.get("quantize") != "static":
        # optimum-intel compresses the weights of a model of 1e9 parameters or more to int8 unless told not to
        # (optimum.exporters.openvino, _MAX_UNCOMPRESSED_SIZE): `openvino` is f32, so it says load_in_8bit=False,
        # and the IR is read back (a model with int8 weights is refused, never gated as f32)
        model = load_st(ctx, ctx.candidate.path, "openvino", export=True, load_in_8bit=False)
        model.save(str(out))
        if not (out / PLAIN).is_file():
            raise RuntimeError(f"the OpenVINO export wrote no {PLAIN} in {out}")
        import openvino as ov

        precision = op_precision(ov.Core().read_model(out / PLAIN))
        if precision["ops_int8"] or precision["ops_float_int8_weights"]:
            raise RuntimeError(f"the OpenVINO export of {ctx.spec.id} holds int8 ({precision['ops_int8']} int8 "
                               f"MatMuls, {precision['ops_float_int8_weights']} with int8 weights): it is not f32")
        return {"backend": "openvino", "file_name": PLAIN, "weights": "f32", **precision}
    if ctx.spec.opts.get("accuracy_control") == "nncf":
        from quantgate.backends import openvino_ac

        return openvino_ac.build(ctx, out, calibration_samples, ov_config(ctx))
    return _build_static_int8(ctx, out)


def calibration_samples(ctx: BuildContext, out: Path):
    """The plain IR copied from the dependency, loaded, and its calibration samples (one unpadded
    sequence each, as at inference with batch 1)."""
    if not ctx.calibration:
        raise ValueError(f"{ctx.spec.id} needs calibration inputs")
    assert ctx.dependency is not None, f"{ctx.spec.id} is built from the `openvino` artifact"
    copy_artifact(ctx.dependency.path, out)
    model = load_st(ctx, out, "openvino", file_name=PLAIN, ov_config=ov_config(ctx))
    input_names = set(model.transformers_model.input_names)
    encoded = tokenize(model, ctx.calibration, padding=True, return_tensors="np")
    samples = [
        {name: encoded[name][i : i + 1] for name in encoded if name in input_names} for i in range(len(ctx.calibration))
    ]
    samples = [{k: v[:, : int(s["attention_mask"].sum())] for k, v in s.items()} for s in samples]
    if "position_ids" in input_names:  # a decoder's IR: positions as its forward counts them (feed_position_ids)
        import numpy as np

        for sample in samples:
            sample["position_ids"] = np.arange(sample["input_ids"].shape[1], dtype=np.int64)[None, :]
    return feed_position_ids(model), samples


def _build_static_int8(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import nncf
    from optimum.intel import OVConfig, OVQuantizationConfig, OVQuantizer

    model, samples = calibration_samples(ctx, out)
    ov_model = model.transformers_model
    config = OVConfig(quantization_config=OVQuantizationConfig(num_samples=len(samples)))
    quantizer = OVQuantizer.from_pretrained(ov_model)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        quantizer.quantize(nncf.Dataset(Tracked(samples, f"{ctx.spec.id}: calibrating")), save_directory=tmp,
                           ov_config=config)
        xml = next(Path(tmp).rglob("openvino_model.xml"))
        remove_files(out / "openvino", ["openvino_model.xml", "openvino_model.bin"])
        shutil.move(xml, out / QINT8)
        shutil.move(xml.with_suffix(".bin"), (out / QINT8).with_suffix(".bin"))
    import openvino as ov

    return {"backend": "openvino", "file_name": QINT8, "calibration_samples": len(samples),
            **op_precision(ov.Core().read_model(out / QINT8))}


def header_lines(selected: list[VariantSpec], device: str) -> list[str]:
    """The report header's line for OpenVINO: what each variant asked for and the CPU plugin's default here (from
    the CPU flags: collection imports no openvino)."""
    openvino = [v for v in selected if v.family == "openvino"]
    if not openvino or device != "cpu":
        return []
    native = cpu_bf16_missing() is None
    asked = ", ".join(f"{v.id} {v.opts.get('inference_precision', 'f32')}" for v in openvino)
    return [f"quantgate: OpenVINO asked for: {asked}; its CPU plugin's default here: "
            f"{'bf16 (native bf16)' if native else 'f32 (no native bf16)'}; what each ran with is read back "
            "from its compiled model (verdict, summary.md)"]


def ov_config(ctx: BuildContext) -> dict[str, str]:
    return runtime_options(ctx)["ov_config"]


def load(ctx: BuildContext, artifact: Artifact):
    """The IR compiled at the variant's precision; refused when the compiled model runs another (a bf16 request
    on a CPU the flags call bf16-capable but OpenVINO does not: the variant would gate f32 under a bf16 name)."""
    model = load_st(ctx, artifact.path, "openvino", file_name=artifact.load_info["file_name"], ov_config=ov_config(ctx))
    asked, ran = ov_config(ctx)["INFERENCE_PRECISION_HINT"], runtime_facts(model)["inference_precision"]
    if ran != asked:
        raise RuntimeError(f"asked OpenVINO's CPU plugin for {asked}, its compiled model runs {ran}")
    return feed_position_ids(model)


def _openvino_wo(bits: int, how: str) -> VariantSpec:
    return VariantSpec(
        id=f"openvino-int{bits}-wo",
        family="openvino",
        precision=f"int{bits}-wo",
        description=f"OpenVINO weight-only int{bits} (NNCF compress_weights through optimum-intel's "
                    f"OVWeightQuantizationConfig, asymmetric, {how}): weights stored in int{bits}, activations f32; "
                    "what teams publish for 0.5B+ decoder models",
        options=(("quantize", "weights"), ("bits", bits), ("inference_precision", "f32")),
        depends_on="openvino",
        default=False,
    )


# named in the run's header and verdict, and in every artifact's key
LIBRARIES = ("optimum-intel", "openvino", "nncf")

# this family's variants, in the matrix's order (quantgate.variants.registry concatenates the families')
VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec("openvino", "openvino", "fp32", "OpenVINO IR, exported by optimum-intel, run in f32 "
                "(INFERENCE_PRECISION_HINT=f32: the CPU plugin's default is bf16 where the CPU has it)",
                (("inference_precision", "f32"), ("weights", "f32"))),
    VariantSpec("openvino-bf16", "openvino", "bf16", "OpenVINO IR (the `openvino` artifact) at the CPU plugin's "
                "bf16 inference precision: what backend=\"openvino\" runs by default on a CPU with AVX512-BF16/AMX",
                (("inference_precision", "bf16"),), requires=("cpu-bf16",), artifact_of="openvino"),
    VariantSpec(
        "openvino-qint8",
        "openvino",
        "int8",
        "OpenVINO static int8 (optimum-intel OVQuantizer / NNCF, OVQuantizationConfig defaults), "
        "calibrated on local calibration inputs; non-quantized ops in f32",
        (("quantize", "static"), ("inference_precision", "f32")),
        calibrated=True,
        depends_on="openvino",
    ),
    VariantSpec(
        "openvino-qint8-bf16",
        "openvino",
        "int8",
        "The `openvino-qint8` IR with its non-quantized ops at the CPU plugin's bf16 inference precision: "
        "what a plain load of that IR runs by default on a CPU with AVX512-BF16/AMX",
        (("quantize", "static"), ("inference_precision", "bf16")),
        requires=("cpu-bf16",),
        artifact_of="openvino-qint8",
    ),
    VariantSpec(
        "openvino-qint8-ac",
        "openvino",
        "int8",
        "OpenVINO int8 with accuracy control (NNCF quantize_with_accuracy_control): operations that cost "
        "quality go back to f32 activations until the relative MAP loss on a held-out validation split is "
        "within the quality limit (their SmoothQuant-scaled weights stay int8); same calibration and settings "
        "as openvino-qint8",
        (("quantize", "static"), ("accuracy_control", "nncf"), ("restore", "smoothing-aware"),
         ("inference_precision", "f32")),
        calibrated=True,
        depends_on="openvino",
        tuned=True,
    ),
    _openvino_wo(8, "per output channel"),
    _openvino_wo(4, "in groups of 128 (a narrower layer: the largest power of two that divides it), every "
                    "layer NNCF's ratio 1.0 allows, the rest int8"),
)
# wall(variant) / the reference's unit in the project's cold default run: quantgate.variants.timeguard
TIME_MULTIPLES = {"openvino": 1.05, "openvino-bf16": 0.50, "openvino-qint8": 0.83, "openvino-qint8-bf16": 0.27,
                  "openvino-qint8-ac": 1.00}
