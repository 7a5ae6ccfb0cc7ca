"""Sequential scoring: a variant is scored in chunks of queries until every metric is decided.

Every variant walks the same seeded order of each data set's test queries (`EvalSet.evaluation_order`;
the reference is scored on all of it once, from the cache after the first run). After each chunk
(the looks of `quantgate.decisions.decision.schedule`: 20, 40, 80, ... queries, then all) the agreement limits
are checked on the pairs scored so far (a broken variant fails at the first look) and every quality
metric gets its three-valued decision; the variant stops at the first look where agreement failed
or every metric is decided, else when the order (the --gate-max-queries budget) runs out.
mteb tasks named with --gate-tasks and full-corpus retrieval without candidate lists are evaluated
on all their queries in one look. Here: a variant's evaluation record and the look loop; the run's services walk it
(quantgate.session.evaluator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quantgate.decisions.decision import Decision, Sequence, evaluate, worst
from quantgate.evaluation.agreement import AgreementResult
from quantgate.evaluation.quality import TaskQuality


@dataclass
class Evaluation:
    variant: str
    decisions: list[Decision] = field(default_factory=list)
    qualities: list[TaskQuality] = field(default_factory=list)
    agreement: list[AgreementResult] = field(default_factory=list)
    crossed: list[dict[str, Any]] = field(default_factory=list)  # agreement limits crossed (checks.crossed_records)
    usage: list[dict[str, Any]] = field(default_factory=list)  # per data set: queries/pairs used, why it stopped

    @property
    def agreement_failures(self) -> list[str]:
        return [f"[{c['dataset']}] {c['message']}" for c in self.crossed]

    @property
    def decision(self) -> str:
        return "fail" if self.agreement_failures else worst([d.decision for d in self.decisions])

    def quality_failures(self) -> list[str]:
        return [d.describe() for d in self.decisions if d.decision == "fail"]

    def undecided(self) -> list[str]:
        return [d.describe() for d in self.decisions if d.decision == "inconclusive"]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "decisions": [d.to_dict() for d in self.decisions],
                "tasks": [q.to_dict() for q in self.qualities], "usage": self.usage}


def walk(sequence: Sequence, at_look: Callable[[int, int], tuple[list[Decision], str | None]]
         ) -> tuple[list[Decision], int, str]:
    """The sequential look loop the quality and regression gates share: `at_look(look, n)` scores up to the look's
    `n` queries and returns every metric's decision there, and why to stop regardless (agreement crossed), or None.
    Stops at the first look where that reason is given or nothing is inconclusive. (decisions, queries, why)."""
    decisions: list[Decision] = []
    n = 0
    for look, n in enumerate(sequence.looks):
        decisions, stop = at_look(look, n)
        if stop:
            return decisions, n, stop
        if all(d.decision != "inconclusive" for d in decisions):
            return decisions, n, f"decided at {n} queries"
    return decisions, n, "data exhausted"


def look_decisions(dataset: str, references: dict[str, TaskQuality], qualities: list[TaskQuality], qids: list[str],
                   limit: Callable[[str], float], sequence: Sequence, look: int, min_queries: int) -> list[Decision]:
    """Every metric's decision at one look: `qualities` (one per task, on the queries `qids` scored so far)
    against `references` (the same tasks), paired by query; a query the compared side lacks counts as 0."""
    decisions = []
    for quality in qualities:
        ref = references[quality.task]
        for metric in quality.per_query:
            paired = [q for q in qids if q in ref.per_query[metric]]
            decisions.append(evaluate(dataset, quality.task, metric, [ref.per_query[metric][q] for q in paired],
                                      [quality.per_query[metric].get(q, 0.0) for q in paired], limit(metric),
                                      sequence, look, min_queries))
    return decisions
