"""Stored embedding formats: what an index keeps of an embedder's vectors, and the retrieval quality it leaves.

A format id is `[dimN-]PRECISION[-rescore]`, or `dimN` alone (float32 vectors cut to N dimensions):

- PRECISION is what sentence-transformers' `quantize_embeddings` writes: `float32`; `int8` / `uint8` (one byte per
  dimension, 256 buckets between each dimension's calibration minimum and maximum); `binary` / `ubinary` (one bit per
  dimension, the sign: the same bits, stored as int8 or uint8 bytes, so the same Hamming search).
- `dimN` truncates each vector to its first N dimensions and normalises it again (sentence-transformers'
  `truncate_embeddings`, as `truncate_dim` does): Matryoshka storage.
- `-rescore` retrieves `rescore_multiplier x k` results from the quantized index and reorders them by the float32
  query against the stored vectors, as sentence-transformers' `semantic_search_faiss` does.

The index is faiss: `IndexFlatIP` for float32 (4 bytes a dimension), `IndexScalarQuantizer` with faiss' direct 8-bit
codes for int8 / uint8 (the codes `quantize_embeddings` wrote, one byte a dimension, inner product on them), and
`IndexBinaryFlat` (Hamming) for binary. Queries are quantized with the same ranges, as semantic_search_faiss does.
Everything starts from float embeddings the scoring pass already computed: no model is run here.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantgate.core.formats import StoredFormat
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation.encoding import unit_rows

TOP_K = 10  # NDCG@10 reads the first 10 results: the index is asked what a top-10 search asks it


def truncate(vectors: np.ndarray, fmt: StoredFormat) -> np.ndarray:
    """The float vectors a format starts from: cut to its dimensions and of unit length again, float32."""
    from sentence_transformers.util import truncate_embeddings  # noqa: PLC0415 -- it imports torch

    if fmt.dim:
        vectors = truncate_embeddings(np.asarray(vectors), fmt.dim)
    return unit_rows(np.asarray(vectors, dtype=np.float64)).astype(np.float32)


def calibration_ranges(calibration: np.ndarray, fmt: StoredFormat) -> np.ndarray:
    """Each dimension's (minimum, maximum) over the calibration embeddings, as `quantize_embeddings` computes them."""
    vectors = truncate(calibration, fmt)
    return np.vstack((vectors.min(axis=0), vectors.max(axis=0)))


def quantize(vectors: np.ndarray, fmt: StoredFormat, ranges: np.ndarray | None) -> np.ndarray:
    """What the format's index stores of unit vectors: its precision's own `encode`, else sentence-transformers'
    `quantize_embeddings` under the precision's name."""
    from sentence_transformers.util.quantization import quantize_embeddings  # noqa: PLC0415 -- torch

    if fmt.kind.encode is not None:
        return np.asarray(fmt.kind.encode(vectors, ranges if fmt.calibrated else None))
    precision = "ubinary" if fmt.precision == "binary" else fmt.precision  # the same bits; faiss reads uint8
    return quantize_embeddings(vectors, precision, ranges=ranges if fmt.calibrated else None)


@contextlib.contextmanager
def one_search_thread():
    """faiss' OpenMP at one thread: a search served one query at a time, timed alike whatever ran before it. With
    faiss' default threads the same index's single-query latency depended on the runtime that had just run: a
    binary-rescore index of 5,183 passages, p99 20.4 ms right after ONNX Runtime encoded a batch against 0.6 ms on one
    thread, p50 0.45 / 0.48 ms (2 cores; docs/measurements.md "Stored-format search latency")."""
    import faiss  # noqa: PLC0415 -- only the stored-format gate needs it

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


class StoredIndex:
    """One format's index over a corpus, searched as a deployment searches it."""

    def __init__(self, corpus: np.ndarray, fmt: StoredFormat, ranges: np.ndarray | None,
                 rescore_multiplier: int) -> None:
        import faiss  # noqa: PLC0415 -- only the stored-format gate needs it

        if fmt.calibrated and ranges is None:
            raise ValueError(f"{fmt.id} needs calibration ranges")
        self.fmt, self.ranges, self.multiplier = fmt, ranges, rescore_multiplier
        vectors = truncate(corpus, fmt)
        self.dim = vectors.shape[1]
        self.codes = quantize(vectors, fmt, ranges)
        if fmt.kind.index == "flat":
            self.index = faiss.IndexFlatIP(self.dim)
        elif fmt.kind.index in ("sq8", "sq8-signed"):
            kind = faiss.ScalarQuantizer.QT_8bit_direct_signed if fmt.kind.index == "sq8-signed" \
                else faiss.ScalarQuantizer.QT_8bit_direct
            self.index = faiss.IndexScalarQuantizer(self.dim, kind, faiss.METRIC_INNER_PRODUCT)
        else:
            self.index = faiss.IndexBinaryFlat(self.dim)
        self.index.add(self.codes if self.binary else self.codes.astype(np.float32))
        serialize = faiss.serialize_index_binary if self.binary else faiss.serialize_index
        self.index_bytes = int(serialize(self.index).nbytes)

    @property
    def binary(self) -> bool:
        return self.fmt.kind.index == "binary"

    def search(self, queries: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, scores) of the best k corpus vectors per float query, best first: the query quantized
        like the corpus; with -rescore, the index's best `multiplier x k` reordered by the float32 query against
        their stored vectors (int8 codes, or bits as 0/1), as semantic_search_faiss does."""
        floats = truncate(queries, self.fmt)
        codes = quantize(floats, self.fmt, self.ranges)
        wanted = min(k * self.multiplier if self.fmt.rescore else k, self.index.ntotal)
        scores, rows = self.index.search(codes if self.binary else codes.astype(np.float32), wanted)
        if self.binary:
            scores = -scores.astype(np.float64)  # Hamming distance: fewer differing bits is better
        if self.fmt.rescore:
            stored = self.codes[np.maximum(rows, 0)]
            stored = np.unpackbits(stored, axis=-1)[..., : self.dim] if self.binary else stored
            scores = np.einsum("ij,ikj->ik", floats.astype(np.float64), stored.astype(np.float64))
            scores[rows < 0] = -np.inf
            best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            rows, scores = np.take_along_axis(rows, best, 1), np.take_along_axis(scores, best, 1)
        return rows, scores


@dataclass
class FormatQuality:
    """One format's retrieval of one query set: NDCG@10 per query, and what its index costs."""

    format: str
    dimensions: int
    bytes_per_vector: float
    index_bytes: int
    corpus_size: int
    per_query: dict[str, float]
    build_seconds: float
    search_seconds: float  # every query in one batched call

    @property
    def ndcg_at_10(self) -> float:
        return float(np.mean(list(self.per_query.values()))) if self.per_query else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "dimensions": self.dimensions, "bytes_per_vector": self.bytes_per_vector,
                "index_bytes": self.index_bytes, "corpus_size": self.corpus_size, "ndcg_at_10": self.ndcg_at_10,
                "build_seconds": self.build_seconds, "search_seconds": self.search_seconds,
                "per_query": self.per_query}


def ndcg_at_10(rows: np.ndarray, scores: np.ndarray, qids: list[str], doc_ids: list[str],
               qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """pytrec_eval's ndcg_cut_10 per query (the measure mteb's retrieval evaluator reports as ndcg_at_10)."""
    import pytrec_eval  # noqa: PLC0415 -- mteb's dependency; loaded only here

    run = {q: {doc_ids[r]: float(s) for r, s in zip(row, score) if r >= 0} for q, row, score in zip(qids, rows, scores)}
    judged = {q: {d: int(v) for d, v in qrels[q].items()} for q in qids}
    values = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10"}).evaluate(run)
    return {q: float(values[q]["ndcg_cut_10"]) if q in values else 0.0 for q in qids}


def evaluate(fmt: StoredFormat, queries: np.ndarray, qids: list[str], corpus: np.ndarray, doc_ids: list[str],
             qrels: dict[str, dict[str, int]], ranges: np.ndarray | None,
             rescore_multiplier: int) -> tuple[FormatQuality, StoredIndex]:
    started = time.perf_counter()
    index = StoredIndex(corpus, fmt, ranges, rescore_multiplier)
    built = time.perf_counter() - started
    started = time.perf_counter()
    rows, scores = index.search(queries)
    searched = time.perf_counter() - started
    full = corpus.shape[1]
    return FormatQuality(fmt.id, fmt.dimensions(full), fmt.bytes_per_vector(full), index.index_bytes, len(doc_ids),
                         ndcg_at_10(rows, scores, qids, doc_ids, qrels), built, searched), index


def declares_matryoshka(model_dir) -> bool:
    """Whether the model's card or config names Matryoshka training (sentence-transformers writes MatryoshkaLoss and
    its matryoshka_dims into the model card it generates). Truncation is gated either way."""
    for name in ("README.md", "config_sentence_transformers.json"):
        path = Path(model_dir) / name
        if path.is_file() and "matryoshka" in path.read_text(encoding="utf-8", errors="replace").lower():
            return True
    return False


def load_ranges(path) -> np.ndarray:
    """--gate-embedding-ranges: a .npy of shape (2, dimensions), each dimension's minimum then maximum."""
    try:
        ranges = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise QuantgateUsageError(f"--gate-embedding-ranges {path}: cannot read it as a .npy array "
                                  f"({type(err).__name__}); save the ranges with numpy.save") from None
    if ranges.ndim != 2 or ranges.shape[0] != 2 or not np.isfinite(ranges).all() or (ranges[1] < ranges[0]).any():
        raise QuantgateUsageError(f"--gate-embedding-ranges {path}: expected finite (2, dimensions) minimum and "
                                  f"maximum rows, got shape {ranges.shape}")
    return ranges.astype(np.float32)


def save_ranges(ranges: np.ndarray, path) -> None:
    """The ranges a format was gated with, written beside their place and renamed into it (publish pushes them)."""
    from quantgate.core.cache import atomic_target  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp, open(tmp, "wb") as out:
        np.save(out, ranges)
