"""Quality gate: MTEB reranking MAP and retrieval NDCG@10 of each variant against the torch-fp32
reference, decided pass / fail / inconclusive per metric by a sequential non-inferiority test
(quantgate.decisions.decision). An inconclusive variant fails or passes the test as thresholds.toml's
[decision] inconclusive says; its verdict stays inconclusive and publish refuses it either way."""

from __future__ import annotations

import pytest

from quantgate.core.results import GateResult
from quantgate.evaluation import quality
from quantgate.evaluation.scoring import ScoreError
from quantgate.fixtures.outcomes import inconclusive, replayed
from quantgate.variants.factory import BuildError
from quantgate.variants.registry import REFERENCE_ID


@pytest.mark.gate(order=2, name="quality")
def test_quality(gate_session, variant_spec) -> GateResult | None:
    if (saved := replayed(gate_session, variant_spec, "quality")) is not None:
        undecided = [d["dataset"] + " " + d["metric"] for d in saved.get("decisions", []) if d["decision"] != "pass"]
        if message := _undecided(variant_spec, [f"{u}: inconclusive (resumed)" for u in undecided]):
            inconclusive(gate_session.context, message)
        return None
    try:
        evaluation = gate_session.evaluator.evaluation(variant_spec)
    except (ScoreError, BuildError, quality.HubTaskError) as err:
        return GateResult.failed(str(err), {"decision": "fail"}, f"{variant_spec.id}: {err}")
    payload = evaluation.to_dict()
    if variant_spec.id == REFERENCE_ID:  # its numbers are recorded; its loss is zero by definition
        return GateResult({**payload, "decision": "pass"})
    failures = evaluation.quality_failures()
    if evaluation.agreement_failures:
        failures.append(f"not scored further: agreement limits crossed ({evaluation.usage[-1]['stopped']}); "
                        "see test_agreement")
    return GateResult(payload, tuple(failures), f"{variant_spec.id} loses too much quality against {REFERENCE_ID}:"
                      "\n  " + "\n  ".join(failures), _undecided(variant_spec, evaluation.undecided()))


def _undecided(variant_spec, undecided: list[str]) -> str | None:
    if not undecided:
        return None
    return (f"{variant_spec.id}: INCONCLUSIVE against {REFERENCE_ID} (the data do not decide whether the loss is "
            "within the limit):\n  " + "\n  ".join(undecided))
