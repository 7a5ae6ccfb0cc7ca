"""ONNX Runtime variants: the Optimum export, O1-O4 graph optimization, dynamic int8.

Derived variants start from the `onnx` artifact and run sentence-transformers'
`export_optimized_onnx_model` / `export_dynamic_quantized_onnx_model` (Optimum's
ORTOptimizer / ORTQuantizer underneath); each artifact keeps only its own .onnx file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate import machine
from quantgate.backends.common import BuildContext, copy_artifact, estimate, load_st, release, remove_files
from quantgate.cache import Artifact
from quantgate.registry import VariantSpec

PLAIN = "onnx/model.onnx"
WEIGHT_FILES = ("*.onnx", "*.onnx_data")
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "runtime_options", "memory_estimate"]


def skip_reason(spec: VariantSpec, device: str) -> str | None:
    if device != "cuda":
        return None
    if spec.precision == "int8":
        return f"{spec.id} runs on the CPU only (--gate-device cuda)"
    why = machine.capability_missing("ort-cuda")
    return f"{spec.id} on --gate-device cuda {why}" if why else None


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
    """Export: the torch model, the traced graph and the proto; derived variants: the fp32 graph loaded,
    its optimized or quantized copy, and the session that checks it. Loaded: one session's initializers."""
    loaded = 0.5 if spec.precision == "int8" else 1.5
    return estimate(spec, fp32_weight_bytes, build=3.0, load=loaded)


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    opts = ctx.spec.opts
    if "optimize" not in opts and "quantize" not in opts:
        model = load_st(ctx, ctx.candidate.path, "onnx", export=True)
        model.save(str(out))
        if not (out / PLAIN).is_file():
            raise RuntimeError(f"the ONNX export wrote no {PLAIN} in {out}")
        return {"backend": "onnx", "file_name": PLAIN}

    from sentence_transformers import export_dynamic_quantized_onnx_model, export_optimized_onnx_model

    assert ctx.dependency is not None, "derived ONNX variants are built from the `onnx` artifact"
    copy_artifact(ctx.dependency.path, out)
    model = load_st(ctx, out, "onnx", file_name=PLAIN)
    before = set((out / "onnx").iterdir())
    if "optimize" in opts:
        export_optimized_onnx_model(model, opts["optimize"], str(out))
    else:
        export_dynamic_quantized_onnx_model(model, opts["quantize"], str(out))
    written = sorted(p for p in (out / "onnx").iterdir() if p not in before and p.suffix == ".onnx")
    if len(written) != 1:
        raise RuntimeError(f"expected one new .onnx file from Optimum, found {[p.name for p in written]}")
    remove_files(out / "onnx", ["model.onnx", "model.onnx_data"])
    return {"backend": "onnx", "file_name": f"onnx/{written[0].name}"}


def load(ctx: BuildContext, artifact: Artifact):
    info = artifact.load_info
    return load_st(ctx, artifact.path, "onnx", file_name=info["file_name"], **runtime_options(ctx))
