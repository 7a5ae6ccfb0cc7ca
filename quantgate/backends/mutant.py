"""Injected regressions: test-only variants that prove the gate is not blind.

Registered through the same Registry as real variants (never in VARIANTS), built and cached
like them. Each options tuple names one mutation:
- ("noise", level): Gaussian noise on every Linear weight, std = level x that weight's std.
- ("activation", "identity"): the reranker saved with its activation dropped (raw logits).
- ("sleep", seconds): an unchanged model whose predict()/encode() sleeps first (a slowdown).
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
    model = load_st(ctx, artifact.path, "torch")
    delay = float(ctx.spec.opts.get("sleep", 0))
    if delay:
        import functools
        import time

        for name in ("predict", "encode"):
            original = getattr(model, name, None)
            if original is not None:
                setattr(model, name, _slowed(original, delay, functools, time))
    return model


def _slowed(fn, delay: float, functools, time):
    @functools.wraps(fn)
    def slowed(*args, **kwargs):
        time.sleep(delay)
        return fn(*args, **kwargs)

    return slowed


def parse(value: str):
    """`NAME=key:value[,key:value]` (the --gate-mutant option) -> VariantSpec."""
    from quantgate.registry import VariantSpec

    name, sep, body = value.partition("=")
    if not sep or not name or not body:
        raise ValueError(f"--gate-mutant expects NAME=key:value[,key:value], got {value!r}")
    options = []
    for part in body.split(","):
        key, sep, raw = part.partition(":")
        if key not in ("noise", "seed", "activation", "sleep") or not sep:
            raise ValueError(f"--gate-mutant {value!r}: unknown mutation {part!r} (noise:L, seed:N, activation:identity, sleep:S)")
        options.append((key, raw if key == "activation" else float(raw)))
    return VariantSpec(name, "mutant", "fp32", f"injected regression: {body}", tuple(options))
