"""Stored formats in a run (the stored-format gate, gates/test_stored_formats.py): which variants are judged, the
int8 ranges (given, or calibrated on the train split and saved in the report), each variant's float32 vectors as
the comparison, once per run, and every data set's decided record (quantgate.decisions.formats)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from quantgate.core.candidate import file_sha256
from quantgate.core.formats import StoredFormat, check_dimensions, parse
from quantgate.core.results import GateResult
from quantgate.decisions import formats as decide
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation import formats
from quantgate.evaluation.data import EvalSet
from quantgate.results.verdict import Verdict, decision_of
from quantgate.session.context import GateContext
from quantgate.session.scores import ScoreStore
from quantgate.variants.registry import REFERENCE_ID, VariantSpec


def skip_reason(context: GateContext, verdict: Verdict, spec: VariantSpec) -> str | None:
    """Why VARIANT@FORMAT is not judged for this variant (decided before any search), or None."""
    if context.candidate.kind != "embedder":
        return "stored formats are an embedder's vectors; the candidate is a reranker"
    if (similarity := context.encoding.similarity) != "cosine":
        return (f"the candidate ranks by {similarity} (its similarity_fn_name); stored formats are searched by the "
                "inner product of unit vectors (cosine), which is not how its users rank")
    if spec.id == REFERENCE_ID or context.settings.embedding_formats_for == "all":
        return None
    entry = verdict.variants.get(spec.id)
    decision = decision_of(entry) if entry else "not gated"
    if decision != "pass":
        return (f"its own decision is {decision}: formats are judged for the reference and the variants that passed "
                "(--gate-embedding-formats-for all judges every variant)")
    return None


def _ranges(context: GateContext, spec: VariantSpec, dataset: EvalSet, fmt: StoredFormat, corpus: np.ndarray,
            doc_ids: list[str]) -> tuple[np.ndarray | None, dict]:
    """int8 / uint8 ranges: --gate-embedding-ranges, else calibrated on the train split's passages (never a test
    query), or on the whole corpus when the split names fewer than [embedding_formats] calibration_min; saved in
    the report either way, so publish pushes exactly the ranges that were gated."""
    if not fmt.calibrated:
        return None, {}
    dims = fmt.dimensions(corpus.shape[1])
    if context.settings.embedding_ranges:
        ranges = formats.load_ranges(context.settings.embedding_ranges)
        if ranges.shape[1] != dims:
            raise QuantgateUsageError(f"--gate-embedding-ranges {context.settings.embedding_ranges}: "
                                      f"{ranges.shape[1]} dimensions, but {fmt.id} stores {dims}")
        source = f"given: {context.settings.embedding_ranges}"
    else:
        train = {d for rel in dataset.qrels.get("train", {}).values() for d in rel if d in dataset.corpus}
        rows = [i for i, d in enumerate(doc_ids) if d in train]
        if len(rows) < context.thresholds.embedding_formats["calibration_min"]:
            rows = list(range(len(doc_ids)))
            source = f"the whole corpus ({len(rows)} passages: the train split names {len(train)})"
        else:
            source = f"{len(rows)} passages of the train split"
        ranges = formats.calibration_ranges(corpus[rows], fmt)
    folder = Path(context.settings.report_dir).resolve() / "stored-formats" / spec.id
    path = folder / f"{dataset.name}-{dims}d-ranges.npy"
    formats.save_ranges(ranges, path)
    return ranges, {"ranges_file": str(path), "ranges_from": source, "ranges_sha256": file_sha256(path)}


def _float32(store: ScoreStore, memo: dict, spec: VariantSpec, dataset: EvalSet) -> formats.FormatQuality:
    """The variant's float32 vectors at every dimension, through the same index and evaluator: what each format
    is compared with. Once per run (`memo`: GateRun.formats), variant and data set."""
    if (spec.id, dataset.name) not in memo:
        qids, queries, doc_ids, corpus = store.stored_vectors(spec, dataset)
        memo[spec.id, dataset.name] = formats.evaluate(parse("float32"), queries, qids, corpus, doc_ids,
                                                       dataset.test_qrels, None, 1)[0]
    return memo[spec.id, dataset.name]


def judge(context: GateContext, store: ScoreStore, memo: dict, spec: VariantSpec, fmt: StoredFormat
          ) -> tuple[list[dict[str, Any]], tuple[Any, np.ndarray] | None]:
    """VARIANT@FORMAT on every data set whose scoring pass encoded its whole corpus: each set's record (the format's
    NDCG@10 against the variant's float32 vectors and the reference's, decided; its calibration), and one set's
    (index, queries) for the search latency. A QuantgateUsageError for a format the vectors cannot hold."""
    settings = context.thresholds.embedding_formats
    records, searched = [], None
    for dataset in context.evaluation_sets():
        vectors = store.stored_vectors(spec, dataset)
        if vectors is None:
            continue
        qids, queries, doc_ids, corpus = vectors
        check_dimensions([fmt], corpus.shape[1], context.candidate.source)
        ranges, calibration = _ranges(context, spec, dataset, fmt, corpus, doc_ids)
        quality, index = formats.evaluate(fmt, queries, qids, corpus, doc_ids, dataset.test_qrels, ranges,
                                          settings["rescore_multiplier"])
        own = _float32(store, memo, spec, dataset)
        reference = None if spec.id == REFERENCE_ID else _float32(store, memo, context.reference, dataset)
        variant_limit = context.thresholds.quality_limits(spec.id)["retrieval_ndcg10_max_loss"]
        thresholds = context.thresholds
        record = decide.judge(dataset.name, quality, own, reference, thresholds.format_limit(fmt), variant_limit,
                              thresholds.decision["confidence"], thresholds.decision["min_queries"])
        record.update(calibration=calibration, rescore_multiplier=settings["rescore_multiplier"] if fmt.rescore
                      else None, matryoshka_declared=formats.declares_matryoshka(context.candidate.path) if fmt.dim
                      else None)
        records.append(record)
        searched = searched or (index, queries)
    return records, searched


def result(spec: VariantSpec, fmt: StoredFormat, payload: dict[str, Any]) -> GateResult:
    """VARIANT@FORMAT's result: kept under the variant's formats (its own decision unchanged), failing the test on a
    loss past the limits, inconclusive as the run's policy says."""
    failed = [f for r in payload["datasets"] for f in decide.failures(r)]
    undecided = [u for r in payload["datasets"] for u in decide.undecided(r)]
    return GateResult(payload, tuple(failed), f"{spec.id}@{fmt.id} loses too much retrieval quality:\n  "
                      + "\n  ".join(failed), f"{spec.id}@{fmt.id}: INCONCLUSIVE:\n  " + "\n  ".join(undecided)
                      if undecided else None, stored_format=fmt.id)
