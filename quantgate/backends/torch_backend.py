"""PyTorch variants: the fp32 reference and fp16/bf16 copies (saved as safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, builds_any, estimate, load_st, no_skip, release
from quantgate.core.cache import Artifact
from quantgate.core.spec import REFERENCE_ID, VariantSpec

RUNTIME = "torch"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt")
skip_reason = no_skip  # fp16/bf16 name their machine capability in the spec's `requires`
model_skip = builds_any  # transformers loads what it loads: the reference is the candidate itself
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate", "RUNTIME", "runtime_facts", "ran_with"]


def runtime_facts(model) -> dict[str, Any] | None:
    """The dtype and device of the loaded module's weights, or None when it is not a torch module."""
    import torch

    inner = getattr(model, "transformers_model", None)  # an engine (OpenVINO GenAI, a server) has none
    parameter = next(inner.parameters(), None) if isinstance(inner, torch.nn.Module) else None
    if parameter is None:
        return None
    return {"runtime": RUNTIME, "dtype": str(parameter.dtype).removeprefix("torch."), "device": str(parameter.device)}


def ran_with(runtime: dict[str, Any]) -> str:
    return f"torch {runtime['dtype']} {runtime['device']}"


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
    """The reference is the candidate's own files, linked (or copied) byte for byte: what a user loads is what
    every variant is judged against. The other dtypes are sentence-transformers' save of the candidate loaded in
    that dtype, checked to load back as the candidate loaded the same way (refused when they do not)."""
    dtype = ctx.spec.opts["dtype"]
    if dtype == "float32":
        _link_tree(ctx.candidate.path, out)
        return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": "float32",
                "requested_dtype": dtype, "candidate_files": True}
    model = load_st(ctx, ctx.candidate.path, "torch", torch_dtype=_dtype(dtype))
    loaded = str(next(model.parameters()).dtype).removeprefix("torch.")  # "auto": what the config named
    expected = _probe(model, ctx.candidate.kind)
    before = _config(model)
    model.save(str(out), safe_serialization=True)
    del model
    copy = load_st(ctx, out, "torch", torch_dtype=_dtype(loaded))
    check_round_trip(ctx.spec.id, before, _config(copy), expected, _probe(copy, ctx.candidate.kind))
    return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": loaded, "requested_dtype": dtype}


def _link_tree(src: Path, dst: Path) -> None:
    """Every file of the candidate (what its content hash covers), hard-linked where the file system allows."""
    import os
    import shutil

    from quantgate.core.candidate import HASH_SKIP

    def link(source, target):
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=link, ignore=shutil.ignore_patterns(*HASH_SKIP))


# Inputs that reach past a sliding window or a short max length: a saved copy must score them as the candidate does.
PROBE = ["what does a saved copy change?", "a longer passage " * 40, "short", "x " * 600]


def _probe(model, kind: str):
    import numpy as np

    if kind == "reranker":
        pairs = [(PROBE[i], PROBE[-1 - i]) for i in range(len(PROBE))]
        return np.asarray(model.predict(pairs, batch_size=2, show_progress_bar=False, convert_to_numpy=True),
                          dtype=np.float64)
    return np.asarray(model.encode(PROBE, batch_size=2, show_progress_bar=False, convert_to_numpy=True),
                      dtype=np.float64)


def _config(model) -> dict[str, Any]:
    inner = model.transformers_model
    data = inner.config.to_dict() if hasattr(inner, "config") else {}
    return {k: v for k, v in data.items() if k not in ("dtype", "torch_dtype", "transformers_version", "_name_or_path")}


def check_round_trip(variant: str, before: dict, after: dict, expected, got) -> None:
    """Raise when a saved copy does not reproduce the candidate loaded the same way (same dtype, same device: the
    scores must match to fp32 noise). transformers 4.57 halves Gemma3's bidirectional sliding_window at every load,
    so a load-save copy of an EmbeddingGemma-style model runs another attention window than the candidate."""
    import numpy as np

    changed = [f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
               if before.get(k) != after.get(k)]
    diff = float(np.max(np.abs(expected - got))) if expected.shape == got.shape else float("inf")
    if changed or not np.allclose(expected, got, rtol=1e-4, atol=1e-5):
        detail = f"config {', '.join(changed[:3])}" if changed else "same config"
        raise RuntimeError(f"{variant}'s saved copy does not reproduce the candidate loaded the same way "
                           f"(max abs difference {diff:.3g} on {len(PROBE)} probe inputs; {detail}): "
                           "sentence-transformers' save and load change this model")


def load(ctx: BuildContext, artifact: Artifact):
    return load_st(ctx, artifact.path, "torch", torch_dtype=_dtype(artifact.load_info["torch_dtype"]))


# this family's variants, in the matrix's order (quantgate.variants.registry concatenates the families')
VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec(REFERENCE_ID, "torch", "fp32", "PyTorch fp32: the reference", (("dtype", "float32"),)),
    VariantSpec("torch-fp16", "torch", "fp16", "PyTorch, weights and compute in float16", (("dtype", "float16"),),
                requires=("fp16",)),
    VariantSpec("torch-bf16", "torch", "bf16", "PyTorch, weights and compute in bfloat16", (("dtype", "bfloat16"),),
                requires=("bf16",)),
)
# wall(variant) / the reference's unit in the project's cold default run: quantgate.variants.timeguard
TIME_MULTIPLES = {"torch-fp16": 0.47, "torch-bf16": 0.35}
