"""Decisions on stored embedding formats (quantgate.evaluation.formats), with the quality gate's machinery.

A format's question: does storing this variant's vectors in it lose more NDCG@10 than its limit, against the float32
vectors of the same variant? Every query the variant's scoring pass encoded is searched at once (no inference is
left to save by stopping early), so it is one look of quantgate.decisions.decision: the same paired t, Fieller
bounds and [decision] confidence and min_queries. The combined effect (this variant's network and this format
against the reference's float32 vectors) is decided against the sum of the two limits, the loss budget of both steps.
"""

from __future__ import annotations

from typing import Any

from quantgate.decisions.decision import Decision, Sequence, evaluate, worst
from quantgate.evaluation.formats import FormatQuality


def decide(dataset: str, against: str, compared: dict[str, float], baseline: dict[str, float], limit: float,
           confidence: float, min_queries: int) -> Decision:
    qids = [q for q in baseline if q in compared]
    sequence = Sequence(len(qids), len(qids), 1 - confidence)
    return evaluate(dataset, against, "ndcg_at_10", [baseline[q] for q in qids], [compared[q] for q in qids], limit,
                    sequence, 0, min_queries)


def judge(dataset: str, quality: FormatQuality, own_float: FormatQuality, reference_float: FormatQuality | None,
          limit: float, variant_limit: float, confidence: float, min_queries: int) -> dict[str, Any]:
    """verdict.json's record of one VARIANT@FORMAT on one data set: its index figures, NDCG@10, the decision
    against the variant's own float32 vectors and, for a variant that is not the reference, the combined one."""
    own = decide(dataset, "vs float32", quality.per_query, own_float.per_query, limit, confidence, min_queries)
    decisions = [own]
    if reference_float is not None:
        decisions.append(decide(dataset, "vs reference float32", quality.per_query, reference_float.per_query,
                                limit + variant_limit, confidence, min_queries))
    return {**quality.to_dict(), "dataset": dataset, "float32_ndcg_at_10": own_float.ndcg_at_10,
            "decision": worst([d.decision for d in decisions]), "decisions": [d.to_dict() for d in decisions]}


def failures(record: dict[str, Any]) -> list[str]:
    return [_describe(d) for d in record["decisions"] if d["decision"] == "fail"]


def undecided(record: dict[str, Any]) -> list[str]:
    return [_describe(d) for d in record["decisions"] if d["decision"] == "inconclusive"]


def _describe(decision: dict[str, Any]) -> str:
    return Decision(**decision).describe()


def smallest_passed(records: dict[str, dict[str, Any]]) -> str | None:
    """The stored format (verdict.json's formats of one variant) with the fewest bytes per vector whose every
    decision passed (ties: the earlier one)."""
    passed = [(r["datasets"][0]["bytes_per_vector"], i, f) for i, (f, r) in enumerate(records.items())
              if r["decision"] == "pass" and r.get("datasets")]
    return min(passed)[2] if passed else None
