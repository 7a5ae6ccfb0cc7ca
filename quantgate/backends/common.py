"""What every builder gets, and helpers shared by the backend modules."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantgate.cache import MANIFEST, Artifact
from quantgate.candidate import Candidate, load_model
from quantgate.registry import VariantSpec


@dataclass(frozen=True)
class BuildContext:
    candidate: Candidate
    spec: VariantSpec
    calibration: list | None = None  # (query, passage) pairs or texts, for static int8
    dependency: Artifact | None = None  # the artifact of spec.depends_on
    device: str = "cpu"
    threads: int | None = None
    tuning: Any = None  # quantgate.tuning.Tuning, for accuracy-controlled variants


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


def remove_files(folder: Path, names: list[str]) -> None:
    for name in names:
        for path in folder.glob(name):
            path.unlink()


def runtime_kwargs(ctx: BuildContext, backend: str) -> dict[str, Any]:
    """The same thread budget for every backend: ORT intra-op threads, OpenVINO inference
    threads (torch's is set process-wide by the factory)."""
    if backend == "onnx":
        provider = "CUDAExecutionProvider" if ctx.device == "cuda" else "CPUExecutionProvider"
        kwargs: dict[str, Any] = {"provider": provider}
        if ctx.threads:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = ctx.threads
            options.inter_op_num_threads = 1
            kwargs["session_options"] = options
        return kwargs
    if not ctx.threads:
        return {}
    if backend == "openvino":
        # no CPU pinning: OpenVINO pins its threads (and the caller's) by default, which slows every
        # other runtime in the process afterwards (torch-fp32 29 -> 22 items/s measured here)
        return {"ov_config": {"INFERENCE_NUM_THREADS": str(ctx.threads), "ENABLE_CPU_PINNING": "NO"}}
    return {}
