"""Quality gate: MTEB reranking MAP and retrieval NDCG@10 of each variant, relative loss vs
the torch-fp32 reference, against thresholds.toml (point loss, or the CI's upper end)."""

from __future__ import annotations

import pytest

from quantgate import quality
from quantgate.factory import BuildError
from quantgate.registry import REFERENCE_ID
from quantgate.scoring import ScoreError


def test_quality(gate, variant_spec):
    try:
        qualities, losses, failures = quality.check_variant(gate, variant_spec)
    except (ScoreError, BuildError, quality.HubTaskError) as err:
        gate.run.verdict.record(variant_spec.id, "quality", {}, [str(err)])
        pytest.fail(f"{variant_spec.id}: {err}", pytrace=False)
    gate.run.verdict.record(variant_spec.id, "quality", {"tasks": [q.to_dict() for q in qualities],
                                                      "losses": [l.to_dict() for l in losses]}, failures)
    if variant_spec.id == REFERENCE_ID:
        return  # its numbers are recorded; its loss is zero by definition
    if failures:
        pytest.fail(f"{variant_spec.id} loses too much quality against {REFERENCE_ID}:\n  " + "\n  ".join(failures),
                    pytrace=False)
