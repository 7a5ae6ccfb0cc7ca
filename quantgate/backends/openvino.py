"""OpenVINO variants: the optimum-intel IR export and NNCF static int8.

Static int8 runs optimum-intel's OVQuantizer (NNCF post-training quantization) with
calibration inputs from the local train split -- not sentence-transformers'
`export_static_quantized_openvino_model`, which downloads glue/sst2 from the hub and
calibrates a reranker on single sentences.

Accuracy-controlled int8 (`openvino-qint8-ac`) runs NNCF's `quantize_with_accuracy_control`
with the same calibration and quantization settings as `openvino-qint8`, the variant's
relative MAP limit (`DropType.RELATIVE`: NNCF's default drop is absolute) and a validation
function that scores the held-out validation split through the same sentence-transformers
model and mteb evaluation the gate uses (quantgate.evaluation.tuning).

Those settings include SmoothQuant (alpha 0.95 on MatMuls): activations are multiplied by a
per-channel scale and the weights divided by it. NNCF 3.4's accuracy restorer, reverting an
operation "to floating point" (`RestoreMode.ACTIVATIONS_AND_WEIGHTS`), puts back the *original*
weight but leaves the scale on the activation: the reverted MatMul computes a different function
(measured here: Kendall tau vs fp32 0.94 -> 0.71 after reverting 4 MatMuls). With SmoothQuant on,
operations are therefore reverted with `RestoreMode.ONLY_ACTIVATIONS` (float activations, the
smoothed weights stay int8), and every saved model is checked for that mismatch.
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
from quantgate.backends.openvino_ir import check_smoothing, op_precision
from quantgate.progress import Tracked, bar
from quantgate.variants import machine
from quantgate.variants.cache import Artifact
from quantgate.variants.registry import VariantSpec

PLAIN = "openvino/openvino_model.xml"
QINT8 = "openvino/openvino_model_qint8_quantized.xml"
QINT8_AC = "openvino/openvino_model_qint8_ac.xml"
RUNTIME = "openvino"
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
    compiled = getattr(model.transformers_model, "request", None)
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
    if ctx.spec.opts.get("quantize") != "static":
        model = load_st(ctx, ctx.candidate.path, "openvino", export=True)
        model.save(str(out))
        if not (out / PLAIN).is_file():
            raise RuntimeError(f"the OpenVINO export wrote no {PLAIN} in {out}")
        return {"backend": "openvino", "file_name": PLAIN}
    if ctx.spec.opts.get("accuracy_control") == "nncf":
        return _build_accuracy_controlled(ctx, out)
    return _build_static_int8(ctx, out)


def _calibration_samples(ctx: BuildContext, out: Path):
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

    model, samples = _calibration_samples(ctx, out)
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


def _build_accuracy_controlled(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters, RestoreMode
    from optimum.intel import OVQuantizationConfig

    tuning = ctx.tuning
    kind = ctx.candidate.kind
    model, samples = _calibration_samples(ctx, out)
    ov_model = model.transformers_model
    original_request = ov_model.request

    trials = bar(None, f"{ctx.spec.id}: accuracy-control validations", "validation")

    def validate(compiled_model, qids) -> tuple[float, list[float]]:
        """The gate's metric with NNCF's compiled model in place of the variant's own."""
        ov_model.request = compiled_model
        try:
            value, per_query = tuning.quality(model, kind, list(qids))
        finally:
            ov_model.request = original_request
        trials.set_postfix_str(f"MAP {value:.4f} on {len(per_query)} queries", refresh=False)
        trials.update(1)
        return value, per_query

    # openvino-qint8's settings exactly (optimum-intel's OVQuantizationConfig -> NNCF arguments)
    settings = OVQuantizationConfig(num_samples=len(samples)).to_nncf_dict()
    settings.pop("mode", None)
    settings["advanced_quantization_parameters"] = settings.pop("advanced_parameters")
    smoothed = settings["advanced_quantization_parameters"].smooth_quant_alphas.matmul > 0
    restore = RestoreMode.ONLY_ACTIVATIONS if smoothed else RestoreMode.ACTIVATIONS_AND_WEIGHTS
    reference, _ = tuning.reference_quality()
    # NNCF validates with weights still behind FakeQuantize and compresses them to int8 only when it
    # returns: the saved model's numerics differ (measured here: validation MAP 0.7181 vs 0.7098). So
    # the returned model is validated again; when it misses the limit, NNCF runs once more, asked for
    # that gap less (each run is one of the trials thresholds.toml allows).
    drop, attempts, quantized = tuning.max_loss, [], None
    for _ in range(min(2, tuning.max_trials)):
        seen: list[float] = []
        calls = iter(range(2))

        def recording(compiled_model, qids, seen=seen, calls=calls):
            # NNCF's first two calls are of its float model (a one-item metric-mode probe, the initial validation):
            # the reference's cached validation answers them, the candidate as the quality gate measures it
            if next(calls, None) is not None:
                return tuning.reference_quality(list(qids))
            value, per_query = validate(compiled_model, qids)
            if len(per_query) == len(tuning.qids):
                seen.append(value)  # NNCF's full validations; the last is of the model it returns
            return value, per_query

        quantized = nncf.quantize_with_accuracy_control(
            ov_model.model,
            nncf.Dataset(Tracked(samples, f"{ctx.spec.id}: calibrating")),
            nncf.Dataset(tuning.qids),
            recording,
            max_drop=drop,
            drop_type=nncf.DropType.RELATIVE,
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=tuning.max_trials,
                ranking_subset_size=min(tuning.ranking_queries, len(tuning.qids)),
                # a second worker compiles the next group while one is validated: 697 s -> 484 s, base embedder
                num_ranking_workers=2,
                restore_mode=restore,
            ),
            **settings,
        )
        value, _ = validate(ov.compile_model(quantized, "CPU", ov_config(ctx)), tuning.qids)
        nncf_loss, loss = tuning.loss(reference, seen[-1]), tuning.loss(reference, value)
        attempts.append({"max_drop": round(drop, 6), "nncf_validated_loss": round(nncf_loss, 6),
                         "saved_model_loss": round(loss, 6), **op_precision(quantized)})
        gap = loss - nncf_loss  # what weight compression cost after NNCF's validation
        asked = max(0.0, min(drop, nncf_loss) - gap)  # the same request again (a limit of 0) repeats the same run
        if loss <= tuning.max_loss or nncf_loss > drop or gap <= 0 or asked >= drop:
            break  # met; or NNCF itself fell short within its iterations; or nothing new to ask
        drop = asked
    trials.close()
    check_smoothing(quantized, ov_model.model)
    remove_files(out / "openvino", ["openvino_model.xml", "openvino_model.bin"])
    ov.save_model(quantized, out / QINT8_AC, compress_to_fp16=False)
    return {"backend": "openvino", "file_name": QINT8_AC, "calibration_samples": len(samples),
            **op_precision(quantized), "restore_mode": restore.value,
            "accuracy_control": tuning.summary(reference, value, tool="nncf.quantize_with_accuracy_control",
                                               attempts=attempts)}


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
