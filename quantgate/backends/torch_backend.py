"""PyTorch variants: the fp32 reference and fp16/bf16 copies (saved as safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, load_st
from quantgate.cache import Artifact


def _dtype(name: str):
    import torch

    return "auto" if name == "auto" else getattr(torch, name)


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    dtype = ctx.spec.opts["dtype"]
    model = load_st(ctx, ctx.candidate.path, "torch", torch_dtype=_dtype(dtype))
    loaded = str(next(model.parameters()).dtype).removeprefix("torch.")  # "auto": what the config named
    model.save(str(out), safe_serialization=True)
    return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": loaded, "requested_dtype": dtype}


def load(ctx: BuildContext, artifact: Artifact):
    return load_st(ctx, artifact.path, "torch", torch_dtype=_dtype(artifact.load_info["torch_dtype"]))
