"""ONNX Runtime variants: the Optimum export, O1-O4 graph optimization, dynamic int8.

Derived variants start from the `onnx` artifact and run sentence-transformers'
`export_optimized_onnx_model` / `export_dynamic_quantized_onnx_model` (Optimum's
ORTOptimizer / ORTQuantizer underneath); each artifact keeps only its own .onnx file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, copy_artifact, load_st, remove_files, runtime_kwargs
from quantgate.cache import Artifact

PLAIN = "onnx/model.onnx"


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
    return load_st(ctx, artifact.path, "onnx", file_name=info["file_name"], **runtime_kwargs(ctx, "onnx"))
