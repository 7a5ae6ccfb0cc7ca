"""Stored-format gate (embedders): what an index keeps of each variant's vectors, VARIANT@FORMAT.

Each format (int8 / uint8 / binary vectors, with or without rescoring, Matryoshka dimensions) is built into a real
faiss index from the float embeddings the variant's scoring pass already computed (no inference here) and searched
with every query that pass encoded. Its NDCG@10 relative loss against the same variant's float32 vectors is decided
against thresholds.toml [embedding_formats.max_loss] (one look of the quality gate's paired test), and the combined
loss against the reference's float32 vectors against the sum of both limits. Search latency (one query per round)
comes from pytest-benchmark. A failed format fails this test and is left out of publish; the variant's own decision
does not change.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from quantgate.core import formats as format_ids
from quantgate.core.candidate import file_sha256
from quantgate.decisions import formats as decide
from quantgate.decisions.decision import worst
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation import formats
from quantgate.fixtures.outcomes import inconclusive
from quantgate.results.verdict import decision_of
from quantgate.variants.registry import REFERENCE_ID


@pytest.mark.gate(order=2.5, name="stored-format")
def test_stored_format(gate_session, variant_spec, stored_format, benchmark):
    context = gate_session.context
    fmt = format_ids.parse(stored_format)
    if (why := _skip(gate_session, variant_spec)) is not None:
        pytest.skip(why)
    if (saved := (gate_session.resumed_entry(variant_spec) or {}).get("formats", {}).get(fmt.id)) is not None:
        gate_session.run.verdict.record_format(variant_spec.id, fmt.id, saved)
        return _outcome(gate_session, variant_spec, fmt, saved)
    if gate_session.resumed_entry(variant_spec) is not None:
        pytest.skip("resumed from the saved verdict: its embeddings are not in this run (--gate-no-resume judges "
                    "its stored formats)")
    settings = context.thresholds.embedding_formats
    records, searched = [], None
    for dataset in context.evaluation_sets():
        vectors = gate_session.store.stored_vectors(variant_spec, dataset)
        if vectors is None:
            continue
        qids, queries, doc_ids, corpus = vectors
        try:
            format_ids.check_dimensions([fmt], corpus.shape[1], context.candidate.source)
            ranges, calibration = _ranges(gate_session, variant_spec, dataset, fmt, corpus, doc_ids)
        except QuantgateUsageError as err:
            pytest.exit(f"quantgate: {err}", returncode=pytest.ExitCode.USAGE_ERROR)
        quality, index = formats.evaluate(fmt, queries, qids, corpus, doc_ids, dataset.test_qrels, ranges,
                                          settings["rescore_multiplier"])
        own = _float32(gate_session, variant_spec, dataset)
        reference = None if variant_spec.id == REFERENCE_ID else _float32(gate_session, context.reference, dataset)
        variant_limit = context.thresholds.quality_limits(variant_spec.id)["retrieval_ndcg10_max_loss"]
        thresholds = context.thresholds
        record = decide.judge(dataset.name, quality, own, reference, thresholds.format_limit(fmt), variant_limit,
                              thresholds.decision["confidence"], thresholds.decision["min_queries"])
        record.update(calibration=calibration, rescore_multiplier=settings["rescore_multiplier"] if fmt.rescore
                      else None, matryoshka_declared=formats.declares_matryoshka(context.candidate.path) if fmt.dim
                      else None)
        records.append(record)
        searched = searched or (index, queries)
    if not records:
        pytest.skip("no data set's scoring pass encoded its whole corpus (a folder without candidates.jsonl is "
                    "retrieved through mteb's wrapper; --gate-no-retrieval turns retrieval off)")
    if searched is not None and not benchmark.disabled:
        records[0].update(_latency(benchmark, *searched, fmt))
    payload = {"decision": worst([r["decision"] for r in records]), "datasets": records}
    gate_session.run.verdict.record_format(variant_spec.id, fmt.id, payload)
    _outcome(gate_session, variant_spec, fmt, payload)


def _skip(gate_session, spec) -> str | None:
    context = gate_session.context
    if context.candidate.kind != "embedder":
        return "stored formats are an embedder's vectors; the candidate is a reranker"
    if (similarity := context.encoding.similarity) != "cosine":
        return (f"the candidate ranks by {similarity} (its similarity_fn_name); stored formats are searched by the "
                "inner product of unit vectors (cosine), which is not how its users rank")
    if spec.id == REFERENCE_ID or context.settings.embedding_formats_for == "all":
        return None
    entry = gate_session.run.verdict.variants.get(spec.id)
    decision = decision_of(entry) if entry else "not gated"
    if decision != "pass":
        return (f"its own decision is {decision}: formats are judged for the reference and the variants that passed "
                "(--gate-embedding-formats-for all judges every variant)")
    return None


def _ranges(gate_session, spec, dataset, fmt, corpus: np.ndarray, doc_ids: list[str]) -> tuple[np.ndarray | None, dict]:
    """int8 / uint8 ranges: --gate-embedding-ranges, else calibrated on the train split's passages (never a test
    query), or on the whole corpus when the split names fewer than [embedding_formats] calibration_min; saved in
    the report either way, so publish pushes exactly the ranges that were gated."""
    context = gate_session.context
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


def _float32(gate_session, spec, dataset) -> formats.FormatQuality:
    """The variant's float32 vectors at every dimension, through the same index and evaluator: what each format
    is compared with. Once per run, variant and data set."""
    memo = gate_session.run.formats
    if (spec.id, dataset.name) not in memo:
        qids, queries, doc_ids, corpus = gate_session.store.stored_vectors(spec, dataset)
        memo[spec.id, dataset.name] = formats.evaluate(format_ids.parse("float32"), queries, qids, corpus, doc_ids,
                                                       dataset.test_qrels, None, 1)[0]
    return memo[spec.id, dataset.name]


def _latency(benchmark, index, queries: np.ndarray, fmt) -> dict:
    """One query per timed round on one search thread, every query once (a search served as requests arrive);
    queries per second from the batched search of every query, on faiss' default threads."""
    benchmark.group = "stored format search, 1 query"
    rounds = iter(range(1 << 62))
    with formats.one_search_thread():
        benchmark.pedantic(index.search, setup=lambda: ((queries[[next(rounds) % len(queries)]],), {}),
                           rounds=len(queries), warmup_rounds=min(len(queries), 10), iterations=1)
    data = np.asarray(benchmark.stats.stats.data) * 1000
    batched = []
    for _ in range(3):  # the best of three batched searches: the first pays for warming caches
        started = time.perf_counter()
        index.search(queries)
        batched.append(time.perf_counter() - started)
    return {"search_ms_p50": float(np.percentile(data, 50)), "search_ms_p99": float(np.percentile(data, 99)),
            "latency_rounds": len(data), "latency_threads": 1, "queries_per_s": len(queries) / min(batched)}


def _outcome(gate_session, spec, fmt, payload: dict) -> None:
    failed = [f for r in payload["datasets"] for f in decide.failures(r)]
    if failed:
        pytest.fail(f"{spec.id}@{fmt.id} loses too much retrieval quality:\n  " + "\n  ".join(failed), pytrace=False)
    undecided = [u for r in payload["datasets"] for u in decide.undecided(r)]
    if undecided:
        inconclusive(gate_session.context, f"{spec.id}@{fmt.id}: INCONCLUSIVE:\n  " + "\n  ".join(undecided))
