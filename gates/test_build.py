"""Foundation gate: every selected variant builds (or is taken from the cache intact),
loads through sentence-transformers and produces finite scores of the right shape."""

from __future__ import annotations

import pytest

from quantgate.core.cache import verify
from quantgate.core.results import GateResult
from quantgate.evaluation.scoring import ScoreError, score
from quantgate.fixtures.outcomes import replayed
from quantgate.variants.factory import BuildError


@pytest.mark.gate(order=0, name="build")
def test_variant_builds_and_scores(gate_session, variant_spec) -> GateResult | None:
    context = gate_session.context
    if replayed(gate_session, variant_spec, "build") is not None:
        return None
    try:
        artifact = gate_session.factory.artifact(variant_spec)
        manifest, why = verify(artifact.path)
        assert manifest is not None, f"{variant_spec.id}: artifact {artifact.path} is not intact: {why}"
        model = gate_session.factory.load(variant_spec)
        result = score(model, context.candidate.kind, context.datasets[0],
                       batch_size=context.settings.batch_size, top_k=4, max_queries=4, encoding=context.encoding)
    except (BuildError, ScoreError) as err:
        return GateResult.failed(str(err))
    assert result.scores.shape == (len(result.keys),) and len(result.keys) > 0
    return GateResult({"build_seconds": artifact.manifest.get("build_seconds"), "cached": not artifact.built})
