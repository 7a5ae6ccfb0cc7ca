"""What every builder gets, and helpers shared by the backend modules."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantgate.core.cache import MANIFEST, Artifact
from quantgate.core.candidate import Candidate, load_model
from quantgate.core.memory import Estimate
from quantgate.core.spec import VariantSpec


@dataclass(frozen=True)
class BuildContext:
    candidate: Candidate
    spec: VariantSpec
    calibration: list | None = None  # (query, passage) pairs or texts, for static int8
    dependency: Artifact | None = None  # the artifact of spec.depends_on
    device: str = "cpu"
    threads: int | None = None
    tuning: Any = None  # quantgate.evaluation.tuning.Tuning, for accuracy-controlled variants


def copy_artifact(src: Path, dst: Path) -> None:
    """Copy a dependency's artifact (not its manifest) as the start of a derived one."""
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST))


def load_st(ctx: BuildContext, path: Path, backend: str, **model_kwargs: Any):
    return load_model(
        path,
        ctx.candidate.kind,
        backend,
        trust_remote_code=ctx.candidate.trust_remote_code,
        model_kwargs=model_kwargs,
        device=ctx.device,
    )


def max_length(model) -> int:
    """The truncation length the model uses (CrossEncoder.max_length / SentenceTransformer.max_seq_length)."""
    value = getattr(model, "max_length", None) or getattr(model, "max_seq_length", None)
    return int(value or 512)


def tokenize(model, items: list, **kwargs: Any):
    """Tokenize calibration items exactly as the model will see them at inference."""
    tokenizer = model.tokenizer
    if items and isinstance(items[0], (tuple, list)):
        first, second = [str(a) for a, _ in items], [str(b) for _, b in items]
        return tokenizer(first, second, truncation=True, max_length=max_length(model), **kwargs)
    return tokenizer([str(t) for t in items], truncation=True, max_length=max_length(model), **kwargs)


def feed_position_ids(model):
    """Give an exported graph the `position_ids` it declares as an input, with the values the candidate's own
    forward uses (0 .. length-1 on every row: Qwen3's and Gemma3's models count from their cache position, not
    from the attention mask). Optimum's loaders do not: ONNX Runtime's feature-extraction model raises "Input
    position_ids is required by model but not provided" (a Qwen3 embedder), and optimum-intel leaves the input of
    Gemma3's IR unset, so every position reads as 0."""
    inner = getattr(model, "transformers_model", None)
    if "position_ids" not in (getattr(inner, "input_names", None) or {}):
        return model
    for name in ("_prepare_onnx_inputs", "_prepare_io_binding", "_inference"):  # ONNX Runtime; OpenVINO
        original = getattr(inner, name, None)
        if original is not None:
            setattr(inner, name, _with_positions(original))
    return model


def _with_positions(original):
    import numpy as np

    def call(*args, **kwargs):
        inputs = next(a for a in (*args, *kwargs.values()) if isinstance(a, dict))
        if inputs.get("position_ids") is None and inputs.get("input_ids") is not None:
            ids = inputs["input_ids"]
            if isinstance(ids, np.ndarray):
                inputs["position_ids"] = np.broadcast_to(np.arange(ids.shape[-1], dtype=np.int64), ids.shape).copy()
            else:
                import torch

                inputs["position_ids"] = torch.arange(ids.shape[-1], device=ids.device).expand(ids.shape).contiguous()
        return original(*args, **kwargs)

    return call


def remove_files(folder: Path, names: list[str]) -> None:
    for name in names:
        for path in folder.glob(name):
            path.unlink()


def release(model) -> None:
    """What a family must undo before a loaded variant is dropped; for sentence-transformers models over
    torch, ONNX Runtime, OpenVINO and INC graphs nothing: their sessions and compiled models free their
    memory with the last reference. The factory drops that reference and collects (quantgate.core.memory)."""


def no_skip(spec: VariantSpec, device: str) -> str | None:
    return None


def builds_any(spec: VariantSpec, model) -> str | None:
    return None


def cpu_only(spec: VariantSpec, device: str) -> str | None:
    return f"{spec.id} runs on the CPU only (--gate-device cuda)" if device == "cuda" else None


def estimate(spec: VariantSpec, weights: int, build: float, load: float) -> Estimate:
    """Bytes as multiples of the candidate's fp32 weights plus 128 MB. Each family's multiples are what
    its variants measured over the run's baseline (build, load and scoring together; docs/measurements.md)
    with 5% more."""
    fixed = 128 * 2**20
    return Estimate(build=int(build * weights) + fixed, load=int(load * weights) + fixed)


def query_runs(pairs: list[tuple[str, str]]) -> list[tuple[int, int]]:
    """(start, end) of each run of consecutive pairs with the same query: what an engine that reranks one query's
    candidates per call (OpenVINO GenAI's TextRerankPipeline, a server's /rerank) is given at once."""
    ends = [i for i in range(1, len(pairs)) if pairs[i][0] != pairs[i - 1][0]] + ([len(pairs)] if pairs else [])
    return list(zip([0, *ends[:-1]], ends))
