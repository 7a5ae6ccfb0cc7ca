"""Agreement gate: every variant's scores agree with the torch-fp32 reference after activation, on the
pairs the sequential evaluation scored (a broken variant fails at the first look)."""

from __future__ import annotations

import pytest

from quantgate.core.results import GateResult
from quantgate.evaluation.agreement import describe_worst
from quantgate.evaluation.scoring import ScoreError
from quantgate.fixtures.outcomes import replayed
from quantgate.variants.factory import BuildError
from quantgate.variants.registry import REFERENCE_ID


@pytest.mark.gate(order=1, name="agreement")
def test_agreement(gate_session, variant_spec) -> GateResult | None:
    context = gate_session.context
    if variant_spec.id == REFERENCE_ID:
        pytest.skip("torch-fp32 is the reference")
    if replayed(gate_session, variant_spec, "agreement") is not None:
        return None
    try:
        evaluation = gate_session.evaluator.evaluation(variant_spec)
    except (ScoreError, BuildError) as err:
        return GateResult.failed(str(err), message=f"{variant_spec.id}: {err}")
    limits = context.thresholds.agreement_limits(variant_spec.id, context.candidate.kind)
    failures = evaluation.agreement_failures
    worst = "\n".join(describe_worst(r) for r in evaluation.agreement)
    return GateResult({"limits": limits, "crossed": evaluation.crossed,
                       "results": [r.to_dict() for r in evaluation.agreement]}, tuple(failures),
                      f"{variant_spec.id} disagrees with {REFERENCE_ID}:\n  " + "\n  ".join(failures) + "\n" + worst)
