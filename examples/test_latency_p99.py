"""A team's own gate: batch-1 p99 latency under our serving budget, on this machine.

Written with the public fixtures only and timed by pytest-benchmark (one real input per round, every input
seen once before timing, as a warm server). Set P99_LIMIT_MS to the budget of the machine the team serves
from; the limit means something only on that machine."""

import itertools
import os

import numpy as np
import pytest

P99_LIMIT_MS = float(os.environ.get("P99_LIMIT_MS", "15"))
INPUTS = 100


def test_batch1_p99_latency(gate_variant, gate_data, gate_record, benchmark):
    if benchmark.disabled:
        pytest.skip("pytest-benchmark is disabled (under pytest-xdist timings are not measurements)")
    queries = list(gate_data.queries().items())
    if gate_variant.kind == "reranker":
        inputs = [(text, doc) for qid, text in queries for _, doc in gate_data.candidates(qid)][:INPUTS]
        model = gate_variant.model

        def call(item):
            return model.predict([item], show_progress_bar=False)
    else:
        inputs = [text for _, text in queries] + [doc for qid, _ in queries for _, doc in gate_data.candidates(qid)]
        inputs = inputs[:INPUTS]
        model = gate_variant.model

        def call(item):
            return model.encode([item], show_progress_bar=False)

    feed = itertools.cycle(inputs)
    benchmark.group = "team: batch-1 latency"
    benchmark.pedantic(call, setup=lambda: ((next(feed),), {}), rounds=len(inputs), warmup_rounds=len(inputs))
    p99_ms = float(np.percentile(benchmark.stats.stats.data, 99) * 1000)
    gate_record("p99_latency_ms", p99_ms, limit=P99_LIMIT_MS, note=f"batch 1, {len(inputs)} real inputs")
