"""Injected regressions: test-only variants that prove the gate is not blind.

Registered through the same Registry as real variants (never in VARIANTS), built and cached
like them. Each options tuple names one mutation:
- ("noise", level): Gaussian noise on every Linear weight, std = level x that weight's std.
- ("activation", "identity"): the reranker saved with its activation dropped (raw logits).
- ("sleep", seconds): an unchanged model whose predict()/encode() sleeps first (a slowdown).
- ("activation", "double"): the activation applied twice (sigmoid of sigmoid).
- ("max_length", n): truncation cut to n tokens.
- ("tokenizer", "cased"): an uncased model fed a cased tokenizer (lower-casing turned off).
- ("naive_int8", 1): every Linear weight rounded to int8 with one per-tensor scale, no calibration.
- ("negate", 1): scores (rerankers) or embeddings (embedders) negated.
- ("padding", level): the transformer's output shifted by level x the row's padding tokens (a padding bug).
- ("crash", 1): predict()/encode() raise, as a backend that breaks while scoring.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, builds_any, estimate, load_st, no_skip, release
from quantgate.backends.torch_backend import WEIGHT_FILES, runtime_options
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec
from quantgate.errors import QuantgateUsageError

skip_reason = no_skip
SCORES_KEPT = False  # a test's mutation runs every run: what it does while scoring is what the tests check
model_skip = builds_any
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate"]


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    """An fp32 torch model changed in place, saved, loaded again."""
    return estimate(spec, fp32_weight_bytes, build=2.6, load=1.6)


def add_noise(model, level: float, seed: int = 0) -> None:
    """Gaussian noise on every Linear weight of a loaded model, std = level x that weight's std (in place):
    also how tests/test_regression.py and scripts/retrain_regression.py make a retrain gone wrong."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                w.add_(torch.randn(w.shape, generator=generator) * level * w.std())


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import torch

    opts = ctx.spec.opts
    model = load_st(ctx, ctx.candidate.path, "torch")
    if "noise" in opts:
        add_noise(model, float(opts["noise"]), int(opts.get("seed", 0)))
    if "naive_int8" in opts:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    w = module.weight
                    scale = w.abs().max() / 127
                    w.copy_(torch.round(w / scale).clamp(-128, 127) * scale)
    if opts.get("activation") == "identity":
        if ctx.candidate.kind != "reranker":
            raise ValueError("the activation mutation applies to rerankers")
        model.activation_fn = torch.nn.Identity()
    model.save(str(out), safe_serialization=True)
    return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": "float32"}


def load(ctx: BuildContext, artifact: Artifact):
    import torch

    opts = ctx.spec.opts
    model = load_st(ctx, artifact.path, "torch")
    if opts.get("activation") == "double":
        model.activation_fn = torch.nn.Sequential(torch.nn.Sigmoid(), torch.nn.Sigmoid())
    if "max_length" in opts:
        if ctx.candidate.kind == "reranker":
            model.max_length = int(opts["max_length"])
        else:
            model.max_seq_length = int(opts["max_length"])
    if opts.get("tokenizer") == "cased":
        from transformers import AutoTokenizer

        cased = AutoTokenizer.from_pretrained(str(artifact.path), do_lower_case=False)
        cased.model_max_length = model.tokenizer.model_max_length
        model[0].processor = cased
    if "negate" in opts:
        name = "predict" if ctx.candidate.kind == "reranker" else "encode"
        original = getattr(model, name)
        setattr(model, name, functools.wraps(original)(lambda *a, **k: -original(*a, **k)))
    if "padding" in opts:
        model[0].register_forward_hook(_padding_dependent(float(opts["padding"])))
    if "crash" in opts:
        for name in ("predict", "encode"):
            if hasattr(model, name):
                setattr(model, name, _crashing)
    delay = float(opts.get("sleep", 0))
    if delay:
        for name in ("predict", "encode"):
            original = getattr(model, name, None)
            if original is not None:
                setattr(model, name, _slowed(original, delay))
    return model


def _padding_dependent(level: float):
    def hook(module, args, features):
        output = features[module.module_output_name]
        pads = (features["attention_mask"] == 0).sum(dim=1).to(output.dtype)
        features[module.module_output_name] = output + level * pads.view(-1, *[1] * (output.dim() - 1))
        return features

    return hook


def _crashing(*args, **kwargs):
    raise RuntimeError("injected crash while scoring (--gate-mutant crash)")


def _slowed(fn, delay: float):
    @functools.wraps(fn)
    def slowed(*args, **kwargs):
        time.sleep(delay)
        return fn(*args, **kwargs)

    return slowed


MUTATIONS = ("noise", "seed", "activation", "sleep", "max_length", "tokenizer", "naive_int8", "negate", "padding",
             "crash")


def parse(value: str):
    """`NAME=key:value[,key:value]` (the --gate-mutant option) -> VariantSpec."""
    from quantgate.core.spec import VariantSpec

    name, sep, body = value.partition("=")
    if not sep or not name or not body:
        raise QuantgateUsageError(f"--gate-mutant expects NAME=key:value[,key:value], got {value!r}")
    options = []
    for part in body.split(","):
        key, sep, raw = part.partition(":")
        if key not in MUTATIONS or not sep:
            raise QuantgateUsageError(f"--gate-mutant {value!r}: unknown mutation {part!r}; "
                                      f"known: {', '.join(MUTATIONS)}")
        try:
            options.append((key, raw if key in ("activation", "tokenizer") else float(raw)))
        except ValueError:
            raise QuantgateUsageError(f"--gate-mutant {value!r}: {key} takes a number, not {raw!r}") from None
    return VariantSpec(name, "mutant", "fp32", f"injected regression: {body}", tuple(options))
