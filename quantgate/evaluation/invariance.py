"""Batch and padding invariance: a variant scores the same input the same way alone and inside padded batches.

A fixed set of evaluation pairs is scored alone (batch 1), each beside the set's longest pair (padded to its
length), all in one batch of mixed lengths, and in reverse order in batches of two. Scores after activation
(rerankers) or the pair's cosine similarity from embeddings encoded the same ways (embedders); the largest
difference from batch 1 is the variant's batch dependence. A left/right padding bug shows here, and so does
ONNX Runtime dynamic int8, whose activation scales are computed over each batch, padding included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from quantgate.evaluation.encoding import unit_rows
from quantgate.evaluation.scoring import activated_scores

PAIRS = 16  # pairs of the first evaluation set: 16 alone + 16 padded + 2 batched calls, a second on 2 cores
FP32_NOISE = 1e-4  # fp32 backends move a pair by <= 8e-7 here (shared reranker, embedded embedder)
ROUNDING = 0.02  # 16-bit arithmetic over other padded shapes, static int8: <= 0.016 measured (docs/measurements.md)


@dataclass
class BatchInvariance:
    pairs: int
    max_abs_error: float  # the largest |batched - alone| over every pair and composition
    by_composition: dict[str, float]  # composition -> its largest difference
    worst: dict  # the pair that moved most: its texts (shortened), alone, batched, composition

    @property
    def dependence(self) -> str:
        """none (fp32 noise), rounding (reduced-precision arithmetic over other shapes) or batch (the scores are a
        function of the batch: dynamic quantization scales, a padding bug)."""
        if self.max_abs_error <= FP32_NOISE:
            return "none"
        return "rounding" if self.max_abs_error <= ROUNDING else "batch"

    def to_dict(self) -> dict:
        return {**asdict(self), "dependence": self.dependence, "depends_on_batch": self.dependence == "batch"}

    @classmethod
    def from_dict(cls, data: dict) -> BatchInvariance:
        return cls(int(data["pairs"]), float(data["max_abs_error"]), dict(data["by_composition"]), dict(data["worst"]))


def _scores(model, kind: str, pairs: list[tuple[str, str]], batch_size: int) -> np.ndarray:
    if kind == "reranker":
        return activated_scores(model, pairs, batch_size)
    texts = [t for pair in pairs for t in pair]
    emb = unit_rows(np.asarray(model.encode(texts, batch_size=batch_size, show_progress_bar=False,
                                            convert_to_numpy=True), dtype=np.float64))
    return np.einsum("ij,ij->i", emb[0::2], emb[1::2])


def _alone(model, kind: str, pair: tuple[str, str]) -> float:
    if kind == "reranker":
        return float(_scores(model, kind, [pair], 1)[0])
    # one vector at a time, as before unit_rows existed: the matrix form rounds the last bit otherwise, which picks
    # another "worst" pair among fp32 backends' 4e-16 ties
    emb = [np.asarray(model.encode([t], batch_size=1, show_progress_bar=False, convert_to_numpy=True)[0],
                      dtype=np.float64) for t in pair]
    emb = [e / max(np.linalg.norm(e), 1e-12) for e in emb]
    return float(emb[0] @ emb[1])


def _padded(model, kind: str, pair: tuple[str, str], longest: tuple[str, str]) -> float:
    """`pair` in one batch with the longest pair (embedders: each text beside the longest text)."""
    if kind == "reranker":
        return float(_scores(model, kind, [pair, longest], 2)[0])
    long_text = max(longest, key=len)
    emb = [np.asarray(model.encode([t, long_text], batch_size=2, show_progress_bar=False, convert_to_numpy=True)[0],
                      dtype=np.float64) for t in pair]
    emb = [e / max(np.linalg.norm(e), 1e-12) for e in emb]  # one vector at a time (see _alone)
    return float(emb[0] @ emb[1])


def measure(model, kind: str, pairs: list[tuple[str, str]]) -> BatchInvariance:
    pairs = list(pairs)[:PAIRS]
    alone = np.array([_alone(model, kind, p) for p in pairs])
    longest = max(pairs, key=lambda p: len(p[0]) + len(p[1]))
    batched = {
        "beside the longest": np.array([_padded(model, kind, p, longest) for p in pairs]),
        "one mixed batch": _scores(model, kind, pairs, len(pairs)),
        "reversed, batches of 2": _scores(model, kind, pairs[::-1], 2)[::-1],
    }
    diffs = {name: np.abs(values - alone) for name, values in batched.items()}
    name, index = max(((n, int(np.argmax(d))) for n, d in diffs.items()), key=lambda x: diffs[x[0]][x[1]])
    worst = {"query": pairs[index][0][:80], "passage": pairs[index][1][:80], "alone": float(alone[index]),
             "batched": float(batched[name][index]), "composition": name}
    return BatchInvariance(len(pairs), float(max(d.max() for d in diffs.values())),
                           {n: float(d.max()) for n, d in diffs.items()}, worst)
