"""PyTorch variants: the fp32 reference and fp16/bf16 copies (saved as safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, estimate, load_st, no_skip, release
from quantgate.cache import Artifact
from quantgate.registry import VariantSpec

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt")
skip_reason = no_skip  # fp16/bf16 name their machine capability in the spec's `requires`
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "runtime_options", "memory_estimate"]


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    return {}  # torch's thread budget is process-wide: the factory sets it before a model loads


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    """The model in its dtype (fp32 for "auto": the config may name it), read from fp32 files."""
    ratio = 0.5 if spec.precision in ("fp16", "bf16") else 1.0  # measured: torch-fp32 2.4 with its build
    return estimate(spec, fp32_weight_bytes, build=1.6 + ratio, load=0.6 + ratio)


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
