"""Foundation gate: every selected variant builds (or is taken from the cache intact),
loads through sentence-transformers and produces finite scores of the right shape."""

from __future__ import annotations

from quantgate.cache import verify
from quantgate.scoring import score


def test_variant_builds_and_scores(gate, variant_spec):
    artifact = gate.factory.artifact(variant_spec)
    manifest, why = verify(artifact.path)
    assert manifest is not None, f"{variant_spec.id}: artifact {artifact.path} is not intact: {why}"
    model = gate.factory.load(variant_spec)
    dataset = gate.datasets[0]
    result = score(model, gate.candidate.kind, dataset, batch_size=gate.settings.batch_size, top_k=4, max_queries=4)
    assert result.scores.shape == (len(result.keys),) and len(result.keys) > 0
