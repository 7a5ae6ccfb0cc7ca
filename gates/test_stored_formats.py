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

import numpy as np
import pytest

from quantgate.core import formats as format_ids
from quantgate.core.results import GateResult
from quantgate.decisions.decision import worst
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation import formats
from quantgate.session import stored_formats


@pytest.mark.gate(order=2.5, name="stored-format")
def test_stored_format(gate_session, variant_spec, stored_format, benchmark) -> GateResult:
    context = gate_session.context
    fmt = format_ids.parse(stored_format)
    if (why := stored_formats.skip_reason(context, gate_session.run.verdict, variant_spec)) is not None:
        pytest.skip(why)
    if (saved := gate_session.resumed_format(variant_spec, fmt.id)) is not None:
        return stored_formats.result(variant_spec, fmt, saved)
    if gate_session.resumed_entry(variant_spec) is not None:
        pytest.skip("resumed from the saved verdict: its embeddings are not in this run (--gate-no-resume judges "
                    "its stored formats)")
    try:
        records, searched = stored_formats.judge(context, gate_session.store, gate_session.run.formats, variant_spec,
                                                 fmt)
    except QuantgateUsageError as err:
        pytest.exit(f"quantgate: {err}", returncode=pytest.ExitCode.USAGE_ERROR)
    if not records:
        pytest.skip("no data set's scoring pass encoded its whole corpus (a folder without candidates.jsonl is "
                    "retrieved through mteb's wrapper; --gate-no-retrieval turns retrieval off)")
    if searched is not None and not benchmark.disabled:
        records[0].update(_latency(benchmark, *searched, fmt))
    return stored_formats.result(variant_spec, fmt, {"decision": worst([r["decision"] for r in records]),
                                                      "datasets": records})


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
