"""Batch and padding invariance: each variant (the reference too) scores a fixed set of evaluation pairs alone and
inside padded batches of other lengths and compositions; the largest difference is limited by thresholds.toml
(`batch_max_abs_error`, beside the agreement limits). A padding bug fails here; dynamic int8's batch dependence is
measured and reported (summary.md: which variants' scores depend on the batch)."""

from __future__ import annotations

import pytest

from quantgate.core.checks import crossed
from quantgate.core.metrics import AGREEMENT_METRICS
from quantgate.core.results import GateResult
from quantgate.evaluation import invariance
from quantgate.fixtures.outcomes import replayed, same_model


@pytest.mark.gate(order=1.5, name="batch")
def test_batch_invariance(gate_session, variant_spec) -> GateResult | None:
    context = gate_session.context
    if replayed(gate_session, variant_spec, "batch") is not None or same_model(gate_session, variant_spec, "batch"):
        return None
    dataset = context.evaluation_sets()[0]
    pairs = [(q, p) for _, _, q, p in dataset.reranking_pairs(top_k=2, max_queries=invariance.PAIRS // 2)]
    result = invariance.BatchInvariance.from_dict(gate_session.store.kept_measurement(
        variant_spec, "batch", pairs, lambda: invariance.measure(gate_session.factory.load(variant_spec),
                                                                 context.candidate.kind, pairs).to_dict()))
    limits = context.thresholds.agreement_limits(variant_spec.id, context.candidate.kind)
    limits = {k: v for k, v in limits.items() if k == "batch_max_abs_error"}
    failures = crossed({"batch_max_abs_error": result.max_abs_error}, limits, AGREEMENT_METRICS, dataset.name)
    w, message = result.worst, None
    if failures:
        message = (f"{variant_spec.id}: its scores depend on the batch: {failures[0]} "
                   f"({', '.join(f'{k} {v:.3g}' for k, v in result.by_composition.items())}); worst pair "
                   f"{w['alone']:.4f} alone, {w['batched']:.4f} {w['composition']} (q: {w['query']!r})")
    return GateResult({**result.to_dict(), "limits": limits}, tuple(failures), message)
