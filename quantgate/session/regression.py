"""The regression gate: is the candidate worse than the model in production (--gate-baseline)?

The candidate's fp32 reference against the baseline, per data set and metric (reranking MAP and NDCG@10,
embedders' full-corpus retrieval NDCG@10, mteb hub tasks), with the quality gates' paired three-valued
decisions (quantgate.decisions.decision): the relative loss (baseline - candidate) / baseline against thresholds.toml
[regression] (max_loss, or with require_gain a decided gain of at least min_gain). A baseline model is scored
in the looks of [decision] and stops when every metric is decided (its scores are cached: a baseline gated
run after run is scored once); a verdict baseline's saved values are all there, so one look at all of them.
Speed: each variant against the baseline's same variant in pytest-benchmark's history on this machine, by
the speed gate's noise-aware rule (quantgate.speed.bench.regression).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantgate.decisions.decision import Decision, Sequence, worst
from quantgate.decisions.sequential import look_decisions, walk
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.quality import TaskQuality, evaluate_hub_task, evaluate_model, of_scores
from quantgate.session.context import GateContext
from quantgate.session.evaluator import Evaluator
from quantgate.session.scores import ScoreStore
from quantgate.speed import bench


@dataclass
class BaselineComparison:
    baseline: dict[str, Any]
    limit: float
    decisions: list[Decision] = field(default_factory=list)
    baselines: list[TaskQuality] = field(default_factory=list)  # the baseline's quality where it stopped
    usage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return worst([d.decision for d in self.decisions])

    def failures(self) -> list[str]:
        return [d.describe() for d in self.decisions if d.decision == "fail"]

    def undecided(self) -> list[str]:
        return [d.describe() for d in self.decisions if d.decision == "inconclusive"]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "limit": self.limit, "decision": self.decision,
                "decisions": [d.to_dict() for d in self.decisions], "usage": self.usage,
                "baseline_quality": [{"dataset": q.dataset, "task": q.task, "scores": q.scores}
                                     for q in self.baselines]}


def run(context: GateContext, store: ScoreStore, evaluator: Evaluator) -> BaselineComparison:
    """The candidate's reference against the baseline on every data set, once per run (kept in `evaluator.run`)."""
    if evaluator.run.regression is None:
        baseline = context.baseline
        result = BaselineComparison(baseline.header(), context.thresholds.regression_limit)
        factory = _factory(context, store) if baseline.candidate is not None else None
        try:
            for dataset in context.datasets:
                if evaluator.tasks(dataset):
                    _walk(context, store, evaluator, dataset, factory, result)
            for name, task in evaluator.one_look_tasks():
                _one_look(context, evaluator, name, task, factory, result)
        finally:
            if factory is not None:
                factory.release(context.reference)
        evaluator.run.regression = result
    return evaluator.run.regression


def _factory(context: GateContext, store: ScoreStore):
    """The baseline model's own factory: its fp32 torch artifact, in the same cache, on the same device."""
    from quantgate.variants.factory import VariantFactory  # noqa: PLC0415 -- torch only when a baseline model is gated

    return VariantFactory(context.baseline.candidate, context.registry.variants, store.cache,
                          device=context.device, threads=context.threads, progress=context.progress)


def _walk(context: GateContext, store: ScoreStore, evaluator: Evaluator, dataset: EvalSet, factory,
          result: BaselineComparison) -> None:
    settings = context.thresholds.decision
    alpha = 1 - settings["confidence"]
    candidate = {t: evaluator.quality_of(context.reference, dataset, t) for t in evaluator.tasks(dataset)}
    order = context.order(dataset)
    if factory is None:  # a verdict: every saved value at once
        saved = {t: context.baseline.saved_quality(dataset, t, context.settings.top_k) for t in candidate}
        order = [q for q in order if all(q in values for s in saved.values() for values in s.per_query.values())]
        sequence = Sequence(len(order), len(order), alpha)
    else:
        sequence = Sequence(len(order), settings["first_look"], alpha)
    state = {"saved": saved if factory is None else {}}

    def at_look(look: int, n: int) -> tuple[list[Decision], None]:
        if factory is not None:
            scores = store.baseline_scores(factory, dataset, order[:n])
            state["saved"] = {t: of_scores(dataset, t, scores, order[:n], "baseline", context.baseline_encoding)
                              for t in candidate}
        saved = state["saved"]
        decisions = look_decisions(dataset.name, saved, [candidate[t] for t in saved], order[:n],
                                   lambda _metric: result.limit, sequence, look, settings["min_queries"])
        context.progress(f"regression against the baseline on {dataset.name}, look {look + 1}/{len(sequence.looks)} "
                         f"({n} queries): " + ", ".join(f"{d.task} {d.metric} {d.decision}" for d in decisions))
        return decisions, None

    decisions, n, stopped = walk(sequence, at_look)
    saved = state["saved"]
    result.decisions += decisions
    result.baselines += saved.values()
    result.usage.append({"dataset": dataset.name, "queries": n, "available": len(order), "stopped": stopped})


def _one_look(context: GateContext, evaluator: Evaluator, name: EvalSet | str, task: str, factory,
              result: BaselineComparison) -> None:
    """mteb hub tasks and full-corpus retrieval without candidate lists: both models on every query."""
    candidate = evaluator.quality_of(context.reference, name, task)
    label = name if isinstance(name, str) else name.name
    batch_size = context.settings.batch_size
    if factory is None:
        saved = context.baseline.saved_named(label)
    elif task == "hub":
        hub = next(t for t in context.hub_tasks if t.metadata.name == name)
        saved = evaluate_hub_task(hub, factory.load(context.reference), context.candidate.kind, batch_size)
    else:
        saved = evaluate_model(name, factory.load(context.reference), context.order(name), batch_size)
    qids = sorted(set.intersection(*(set(v) for v in [*saved.per_query.values(), *candidate.per_query.values()])))
    sequence = Sequence(len(qids), len(qids), 1 - context.thresholds.decision["confidence"])
    result.decisions += look_decisions(label, {saved.task: saved}, [candidate], qids, lambda _m: result.limit,
                                       sequence, 0, context.thresholds.decision["min_queries"])
    result.baselines.append(saved)
    result.usage.append({"dataset": label, "queries": len(qids), "available": len(qids), "stopped": "one look"})


def speed(context: GateContext, variant: str, batch: int, current: float) -> tuple[dict[str, Any], list[str]] | None:
    """This run's items/s of a variant against the baseline's same variant and batch in pytest-benchmark's
    history on this machine: (payload, failures), or None when there is no such history."""
    limits = context.thresholds.speed
    history = [p for p in context.speed_history if p.model == context.baseline.sha256]
    past = [p.items_per_s for p in history if p.variant == variant and p.batch == batch][-limits["history_runs"]:]
    if not past:
        return None
    found = bench.regression(history, variant, batch, current, runs=limits["history_runs"],
                             pct=limits["regression_pct"], spread_multiple=limits["spread_multiple"])
    payload = {"items_per_s": round(current, 2), "baseline_runs": len(past), "decided": len(past) >= bench.MIN_RUNS,
               "baseline_items_per_s": [round(x, 2) for x in past], "baseline_sha256": context.baseline.sha256}
    return payload, [found.message().replace("the last", "the baseline's last")] if found else []
