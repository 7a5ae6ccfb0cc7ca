"""Injected regressions: test-only variants that prove the gate is not blind.

Registered through the same Registry as real variants (never in VARIANTS), built and cached
like them. Each options tuple names one mutation:
- ("noise", level): Gaussian noise on every Linear weight, std = level x that weight's std.
- ("activation", "identity"): the reranker saved with its activation dropped (raw logits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, load_st
from quantgate.cache import Artifact


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import torch

    opts = ctx.spec.opts
    model = load_st(ctx, ctx.candidate.path, "torch")
    if "noise" in opts:
        generator = torch.Generator().manual_seed(int(opts.get("seed", 0)))
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    w = module.weight
                    w.add_(torch.randn(w.shape, generator=generator) * float(opts["noise"]) * w.std())
    if opts.get("activation") == "identity":
        if ctx.candidate.kind != "reranker":
            raise ValueError("the activation mutation applies to rerankers")
        model.activation_fn = torch.nn.Identity()
    model.save(str(out), safe_serialization=True)
    return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": "float32"}


def load(ctx: BuildContext, artifact: Artifact):
    return load_st(ctx, artifact.path, "torch")
