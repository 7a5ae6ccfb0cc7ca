"""Quality gate: MTEB reranking MAP and retrieval NDCG@10 of each variant against the torch-fp32
reference, decided pass / fail / inconclusive per metric by a sequential non-inferiority test
(quantgate.decisions.decision). An inconclusive variant fails or passes the test as thresholds.toml's
[decision] inconclusive says; its verdict stays inconclusive and publish refuses it either way."""

from __future__ import annotations

import pytest

from quantgate.evaluation import quality
from quantgate.evaluation.scoring import ScoreError
from quantgate.fixtures.outcomes import inconclusive, replayed
from quantgate.variants.factory import BuildError
from quantgate.variants.registry import REFERENCE_ID


@pytest.mark.gate(order=2, name="quality")
def test_quality(gate_session, variant_spec):
    if (saved := replayed(gate_session, variant_spec, "quality")) is not None:
        undecided = [d["dataset"] + " " + d["metric"] for d in saved.get("decisions", []) if d["decision"] != "pass"]
        return _inconclusive(gate_session, variant_spec, [f"{u}: inconclusive (resumed)" for u in undecided])
    try:
        evaluation = gate_session.evaluator.evaluation(variant_spec)
    except (ScoreError, BuildError, quality.HubTaskError) as err:
        gate_session.run.verdict.record(variant_spec.id, "quality", {"decision": "fail"}, [str(err)])
        pytest.fail(f"{variant_spec.id}: {err}", pytrace=False)
    payload = evaluation.to_dict()
    if variant_spec.id == REFERENCE_ID:  # its numbers are recorded; its loss is zero by definition
        gate_session.run.verdict.record(variant_spec.id, "quality", {**payload, "decision": "pass"}, [])
        return
    failures = evaluation.quality_failures()
    if evaluation.agreement_failures:
        failures.append(f"not scored further: agreement limits crossed ({evaluation.usage[-1]['stopped']}); "
                        "see test_agreement")
    gate_session.run.verdict.record(variant_spec.id, "quality", payload, failures)
    if failures:
        pytest.fail(f"{variant_spec.id} loses too much quality against {REFERENCE_ID}:\n  " + "\n  ".join(failures),
                    pytrace=False)
    _inconclusive(gate_session, variant_spec, evaluation.undecided())


def _inconclusive(gate_session, variant_spec, undecided: list[str]) -> None:
    context = gate_session.context
    if undecided:
        message = (f"{variant_spec.id}: INCONCLUSIVE against {REFERENCE_ID} (the data do not decide "
                   "whether the loss is within the limit):\n  " + "\n  ".join(undecided))
        inconclusive(context, message)
