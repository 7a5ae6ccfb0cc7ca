"""ONNX Runtime variants: the Optimum export, O1-O4 graph optimization, dynamic int8.

Derived variants start from the `onnx` artifact and run Optimum's ORTOptimizer / ORTQuantizer as
sentence-transformers' `export_optimized_onnx_model` / `export_dynamic_quantized_onnx_model` do;
each artifact keeps only its own .onnx file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.backends.common import (
    BuildContext,
    copy_artifact,
    estimate,
    feed_position_ids,
    load_st,
    release,
    remove_files,
)
from quantgate.core import machine
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec

PLAIN = "onnx/model.onnx"
RUNTIME = "onnxruntime"
WEIGHT_FILES = ("*.onnx", "*.onnx_data")
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate", "RUNTIME", "runtime_facts", "ran_with", "outputs_key"]


def runtime_facts(model) -> dict[str, Any] | None:
    """The execution providers of the loaded ONNX Runtime session (optimum's ORTModel), or None for another runtime."""
    inner = getattr(model, "transformers_model", None)
    return {"runtime": RUNTIME, "providers": list(inner.providers)} if hasattr(inner, "providers") else None


def ran_with(runtime: dict[str, Any]) -> str:
    return f"ONNX Runtime {'/'.join(runtime['providers'])}"


def ort_cuda_missing() -> str | None:
    """Why ONNX Runtime cannot run on a CUDA GPU here (onnxruntime-gpu installed, a GPU present), or None."""
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers() and machine.has_cuda():
        return None
    return ("needs ONNX Runtime's CUDAExecutionProvider: a CUDA GPU and onnxruntime-gpu installed in place of "
            "onnxruntime (README: GPU)")


REQUIREMENTS = {"ort-cuda": ort_cuda_missing}  # what a spec's `requires` may name besides machine's own


def skip_reason(spec: VariantSpec, device: str) -> str | None:
    if device != "cuda":
        return None
    if spec.precision in ("int8", "int4-wo"):
        return f"{spec.id} runs on the CPU only (--gate-device cuda)"
    why = ort_cuda_missing()
    return f"{spec.id} on --gate-device cuda {why}" if why else None


def model_skip(spec: VariantSpec, model) -> str | None:
    """Optimum's exporter must export the model's task; O1-O3 also need ORTOptimizer to know the model type
    (it refuses others: "ONNX Runtime doesn't support the graph optimization of qwen3 yet")."""
    from quantgate.backends import support

    why = support.known_reason(spec.id, model) or support.export_reason("onnx", "optimum-onnx", model)
    if why or "optimize" not in spec.opts:
        return why
    refused = support.ort_optimization_reason(model.model_type)
    if refused:
        version = support.library_version("optimum-onnx")
        return f"optimum-onnx {version}'s ORTOptimizer refuses {model.describe()}: {refused}"
    return None


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    """The execution provider, and the run's thread budget as ORT intra-op threads."""
    kwargs: dict[str, Any] = {"provider": "CUDAExecutionProvider" if ctx.device == "cuda" else "CPUExecutionProvider"}
    if ctx.threads:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = ctx.threads
        options.inter_op_num_threads = 1
        kwargs["session_options"] = options
    return kwargs


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    """Build peaks measured in fp32 weights over the run's baseline (build, load and scoring;
    docs/measurements.md), 110M / 335M parameters: export 4.7 / 4.3, O1 4.0 / 3.9, O2 and O3 6.2-7.4 / 7.2
    and 7.9 (ORT's optimizing session, then the fusions on a second copy of the graph, then its
    serialization), dynamic int8 4.5 / 4.1; a loaded session 1.4 (fp32), 0.5 (int8)."""
    opts = spec.opts
    build = 8.5 if opts.get("optimize", "O1") != "O1" else (4.8 if "quantize" in opts else 5.0)
    return estimate(spec, fp32_weight_bytes, build=build, load=0.8 if spec.precision == "int8" else 1.7)


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    opts = ctx.spec.opts
    if "optimize" not in opts and "quantize" not in opts:
        model = load_st(ctx, ctx.candidate.path, "onnx", export=True)
        model.save(str(out))
        if not (out / PLAIN).is_file():
            raise RuntimeError(f"the ONNX export wrote no {PLAIN} in {out}")
        return {"backend": "onnx", "file_name": PLAIN}

    assert ctx.dependency is not None, "derived ONNX variants are built from the `onnx` artifact"
    copy_artifact(ctx.dependency.path, out)
    written = _optimize_or_quantize(opts, out)
    remove_files(out / "onnx", ["model.onnx", "model.onnx_data"])
    info = {"backend": "onnx", "file_name": f"onnx/{written}"}
    if opts.get("quantize") == "weights":  # what the graph holds, read back
        import onnx

        ops = [n.op_type for n in onnx.load(str(out / "onnx" / written), load_external_data=False).graph.node]
        info.update({"weights": f"int{opts['bits']}", "activations": "float", "ops_matmul_nbits":
                     ops.count("MatMulNBits"), "ops_matmul_float": ops.count("MatMul")})
    return info


def _optimize_or_quantize(opts: dict[str, Any], out: Path) -> str:
    """Optimum's ORTOptimizer / ORTQuantizer on the plain graph, with the configuration and file name
    sentence-transformers' `export_optimized_onnx_model` / `export_dynamic_quantized_onnx_model` use
    (`AutoOptimizationConfig.O<n>()`; `AutoQuantizationConfig.<config>(is_static=False)`). They are given
    the folder, not a loaded model: sentence-transformers' functions take a model loaded with an ONNX
    Runtime session, which held one more copy of the weights during the build (O2 of a 110M-parameter
    model, measured here: +3,458 MB over the process's baseline through a loaded model, +3,032 MB from the folder;
    scripts/build_memory.py)."""
    import shutil
    import tempfile

    from optimum.onnxruntime import ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig

    if opts.get("quantize") == "weights":
        return _matmul_nbits(opts, out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        if "optimize" in opts:
            level = opts["optimize"]
            optimizer = ORTOptimizer.from_pretrained(out, file_names=[PLAIN])
            optimizer.optimize(getattr(AutoOptimizationConfig, level)(), tmp, file_suffix=level)
        else:
            config = getattr(AutoQuantizationConfig, opts["quantize"])(is_static=False)
            quantizer = ORTQuantizer.from_pretrained(out, file_name=PLAIN)
            quantizer.quantize(config, tmp, file_suffix=f"{config.weights_dtype.name.lower()}_{opts['quantize']}")
        written = sorted(Path(tmp).glob("*.onnx"))
        if len(written) != 1:
            raise RuntimeError(f"expected one .onnx file from Optimum, found {[p.name for p in written]}")
        for produced in Path(tmp).glob(written[0].name + "*"):  # the graph and its external data, if any
            shutil.move(produced, out / "onnx" / produced.name)
    return written[0].name


def _matmul_nbits(opts: dict[str, Any], out: Path) -> str:
    """Weight-only int4 (`onnx-int4-wo`): ONNX Runtime's MatMulNBitsQuantizer turns each MatMul with a constant
    weight into a MatMulNBits node (int4 blocks of 32 along the reduction axis, asymmetric: its default RTN
    algorithm; onnxruntime-genai's builder ships decoder models so); activations stay float. A MatMul whose weight is
    not a constant (attention's QK and AV products) stays as it is."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    name = f"model_int{opts['bits']}_wo.onnx"
    quantizer = MatMulNBitsQuantizer(onnx.load(str(out / PLAIN)), bits=int(opts["bits"]),
                                     block_size=int(opts["block_size"]), is_symmetric=False)
    quantizer.process()
    quantized = quantizer.model.model
    if not any(node.op_type == "MatMulNBits" for node in quantized.graph.node):
        raise RuntimeError("ONNX Runtime's MatMulNBitsQuantizer quantized no MatMul of the graph")
    onnx.save_model(quantized, str(out / "onnx" / name), save_as_external_data=quantized.ByteSize() > 2**31 - 2**20)
    return name


def outputs_key(ctx: BuildContext, artifact: Artifact) -> dict[str, Any]:
    """What decides a built variant's outputs: the graph's bytes under any file name (Optimum's arm64, avx512 and
    avx512_vnni dynamic int8 presets write byte-identical graphs for BERT-family models, under three names), every
    other file, and how ONNX Runtime runs it (provider, threads). Equal keys score equally, chunk for chunk."""
    files = dict(artifact.manifest["files"])
    load_info = dict(artifact.load_info)
    graph = files.pop(load_info.pop("file_name"))
    return {"graph": graph, "files": files, "load": load_info, "device": ctx.device, "threads": ctx.threads}


def load(ctx: BuildContext, artifact: Artifact):
    info = artifact.load_info
    model = load_st(ctx, artifact.path, "onnx", file_name=info["file_name"], **runtime_options(ctx))
    return feed_position_ids(model)


def _onnx_quant(config: str, note: str) -> VariantSpec:
    return VariantSpec(
        id=f"onnx-qint8-{config}",
        family="onnx",
        precision="int8",
        description=f"ONNX Runtime dynamic int8 (Optimum AutoQuantizationConfig.{config}, is_static=False){note}",
        options=(("quantize", config),),
        depends_on="onnx",
    )




def _onnx_opt(level: str, what: str, requires: tuple[str, ...] = ()) -> VariantSpec:
    return VariantSpec(
        id=f"onnx-{level}",
        family="onnx",
        precision="fp16" if level == "O4" else "fp32",
        description=f"ONNX Runtime, Optimum {level}: {what}",
        options=(("optimize", level),),
        requires=requires,
        depends_on="onnx",
    )


# named in the run's header and verdict, and in every artifact's key
LIBRARIES = ("optimum", "optimum-onnx", "onnxruntime", "onnxruntime-gpu")

# this family's variants, in the matrix's order (quantgate.variants.registry concatenates the families')
VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec("onnx", "onnx", "fp32", "ONNX Runtime fp32, exported by Optimum"),
    _onnx_opt("O1", "basic general graph optimizations"),
    _onnx_opt("O2", "O1 + extended optimizations and transformer fusions"),
    _onnx_opt("O3", "O2 + GELU approximation"),
    _onnx_opt("O4", "O3 + fp16 mixed precision (CUDA only)", requires=("cuda", "ort-cuda")),
    _onnx_quant("arm64", " (per-channel, made for ARM64 NEON)"),
    _onnx_quant("avx2", " (uint8 activations, made for AVX2)"),
    _onnx_quant("avx512", " (made for AVX-512)"),
    _onnx_quant("avx512_vnni", " (made for AVX-512 VNNI)"),
    VariantSpec("onnx-int4-wo", "onnx", "int4-wo", "ONNX Runtime weight-only int4 (MatMulNBitsQuantizer: each "
                "MatMul with a constant weight becomes MatMulNBits, int4 blocks of 32, asymmetric); activations "
                "float", (("quantize", "weights"), ("bits", 4), ("block_size", 32)), depends_on="onnx",
                default=False),
)
# wall(variant) / the reference's unit in the project's cold default run: quantgate.variants.timeguard
TIME_MULTIPLES = {"onnx": 0.58, "onnx-O1": 0.50, "onnx-O2": 0.55, "onnx-O3": 0.59, "onnx-qint8-arm64": 0.44,
                  "onnx-qint8-avx2": 0.54, "onnx-qint8-avx512": 0.44, "onnx-qint8-avx512_vnni": 0.42}
