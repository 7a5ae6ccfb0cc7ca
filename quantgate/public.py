"""What the public fixtures give a team's own checks (quantgate.fixtures.public): a variant as a model it can
score, the evaluation data as the gate resolved it, and a recorder whose results join the variant's decision.

A team's test file needs nothing else:

    def test_golden_top1(gate_variant, gate_reference, gate_data, gate_record):
        pairs = ...
        same = (gate_variant.score(pairs).argmax() == gate_reference.score(pairs).argmax())
        gate_record("golden_top1_same", float(same), limit=1.0, higher_is_better=True)

Scores are what the packaged gates compare: a reranker's after its activation, in fp32 (sigmoid of the logit for
a one-logit cross-encoder); an embedder's pair score is the cosine of its unit-normalised embeddings."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantgate.core.cache import cache_key
from quantgate.core.spec import VariantSpec
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.data import load as load_data
from quantgate.evaluation.encoding import unit_rows
from quantgate.evaluation.scoring import activated_scores


@dataclass(frozen=True)
class ArtifactInfo:
    """The files a variant was built into: its folder, each file's sha256 (what publish would push)."""
    path: Path
    files: dict[str, str]

    @property
    def sha256(self) -> str:
        """One hash of the whole artifact: of its files' names and hashes."""
        return cache_key(self.files)


class GateModel:
    """One variant of the candidate (or its reference) as a team's check uses it. The model is loaded on first
    use and released by the gate after the variant's last test; `score`/`encode` batch like the packaged gates.
    The reference's outputs are kept for the run (keyed by their inputs), so a check that compares every variant
    with the reference loads the reference once, while the reference itself is gated."""

    def __init__(self, spec: VariantSpec, kind: str, load: Callable[[], Any], artifact: Callable[[], Any],
                 batch_size: int = 32, remember: bool = False) -> None:
        self.spec, self.kind, self.batch_size = spec, kind, batch_size
        self._load, self._artifact = load, artifact
        self._memo: dict[tuple[str, str], np.ndarray] | None = {} if remember else None

    def __repr__(self) -> str:
        return f"GateModel({self.id!r}, {self.kind})"

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def model(self):
        """The loaded sentence-transformers model (CrossEncoder or SentenceTransformer), the one the gates use."""
        return self._load()

    @property
    def artifact(self) -> ArtifactInfo:
        artifact = self._artifact()
        return ArtifactInfo(Path(artifact.path), dict(artifact.manifest["files"]))

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One float64 score per (query, passage) pair: a reranker's activated score, an embedder's cosine."""
        pairs = [(str(q), str(p)) for q, p in pairs]
        if self.kind == "reranker":
            return self._remembered("score", pairs, lambda: activated_scores(self.model, pairs, self.batch_size))
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        index = {t: i for i, t in enumerate(texts)}
        emb = self.encode(texts)
        return np.einsum("ij,ij->i", emb[[index[q] for q, _ in pairs]], emb[[index[p] for _, p in pairs]])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embedders: one unit-normalised float64 row per text (what the gates compare by cosine)."""
        if self.kind != "embedder":
            raise TypeError(f"{self.id} is a reranker: it scores pairs (score), it does not encode texts")
        texts = [str(t) for t in texts]

        return self._remembered("encode", texts, lambda: unit_rows(np.asarray(self.model.encode(
            texts, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True),
            dtype=np.float64).reshape(len(texts), -1)))

    def _remembered(self, what: str, inputs: list, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if self._memo is None:
            return compute()
        key = (what, cache_key(inputs))
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key].copy()


@dataclass(frozen=True)
class GateData:
    """The evaluation data as the gate resolved it (--gate-data folders, or the embedded quantgate-mini), after
    --gate-max-queries / --gate-top-k: each set's test queries, their candidate lists in first-stage order, and
    the qrels of its test split."""
    sets: tuple[EvalSet, ...]
    max_queries: int | None = None
    top_k: int | None = None

    @classmethod
    def from_folders(cls, *folders: str | Path, max_queries: int | None = None, top_k: int | None = None) -> GateData:
        """A team's own data (BEIR folders with candidates.jsonl), e.g. in its conftest.py's gate_data override."""
        return cls(tuple(load_data(f) for f in folders), max_queries, top_k)

    def __iter__(self):
        return iter(self.sets)

    def __len__(self) -> int:
        return len(self.sets)

    def __getitem__(self, index: int) -> EvalSet:
        return self.sets[index]

    def queries(self, dataset: EvalSet | None = None) -> dict[str, str]:
        """qid -> query text of the test queries the gate reranks (the first set's, unless one is named), in
        its candidate lists' order."""
        dataset = dataset or self.sets[0]
        return {q: dataset.queries[q] for q in dataset.reranked_queries(self.max_queries)}

    def candidates(self, qid: str, dataset: EvalSet | None = None) -> list[tuple[str, str]]:
        """(docid, text) of a query's candidates, in first-stage order, as the gate reranks them."""
        dataset = dataset or self.sets[0]
        return [(d, dataset.corpus[d]) for d in dataset.candidates.get(qid, [])[: self.top_k]]

    def qrels(self, dataset: EvalSet | None = None) -> dict[str, dict[str, int]]:
        return (dataset or self.sets[0]).test_qrels


@dataclass
class Check:
    """A custom check's result, as recorded under its variant (verdict.json: gates["check:NAME"])."""
    name: str
    value: float | None
    limit: float | None = None
    passed: bool = True
    higher_is_better: bool = False
    note: str = ""
    failures: list[str] = field(default_factory=list)

    @classmethod
    def decide(cls, name: str, value: Any, limit: float | None = None, passed: bool | None = None,
               higher_is_better: bool = False, note: str = "") -> Check:
        """passed if given; else, with a limit, value <= limit (>= with higher_is_better; a NaN fails); else
        informational (passed)."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a check's name must be a non-empty string, got {name!r}")
        number = _number(value, "value")
        bound = _number(limit, "limit") if limit is not None else None
        if passed is None:
            if bound is None:  # informational, unless it is no number at all: a NaN or inf fails
                passed = number is None or math.isfinite(number)
            elif number is None or not math.isfinite(number):
                passed = False
            else:
                passed = number >= bound if higher_is_better else number <= bound
        check = cls(name, number, bound, bool(passed), higher_is_better, note)
        if not check.passed:
            if bound is not None:
                check.failures = [f"{name} = {_show(number)} {'<' if higher_is_better else '>'} limit {_show(bound)}"
                                  + (f" ({note})" if note else "")]
            else:
                check.failures = [f"{name} failed" + (f" (value {_show(number)})" if number is not None else "")
                                  + (f": {note}" if note else "")
                                  + ("; a non-finite value fails unless the check says passed=True"
                                     if number is not None and not math.isfinite(number) else "")]
        return check

    def to_dict(self) -> dict[str, Any]:
        return {"custom": True, "value": self.value, "limit": self.limit, "higher_is_better": self.higher_is_better,
                **({"note": self.note} if self.note else {})}


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"a check's {what} must be a number, got {type(value).__name__} {value!r}") from None


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"
