"""The run's evaluator: each variant walked through the sequential looks (quantgate.decisions.sequential) on the
session's services (the context, the score store, the run's memos), once per run for the agreement, quality and
regression gates."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from quantgate.core.checks import crossed_records
from quantgate.core.metrics import AGREEMENT_METRICS
from quantgate.decisions.decision import Decision, Sequence, evaluate
from quantgate.decisions.sequential import Evaluation, look_decisions, walk
from quantgate.evaluation.agreement import AgreementResult, compare
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.quality import (
    LIMIT_KEYS,
    TaskQuality,
    evaluate_embeddings,
    evaluate_hub_task,
    evaluate_model,
    evaluate_scores,
    first_stage,
    of_scores,
)
from quantgate.evaluation.scoring import Scores
from quantgate.results.run import GateRun
from quantgate.session.context import GateContext
from quantgate.session.scores import ScoreStore
from quantgate.variants.registry import REFERENCE_ID, VariantSpec


class Evaluator:
    """Each variant's evaluation and each task's quality, computed once per run (the agreement, quality and
    regression gates share them): scores from the store, the run's memos in `run` (GateRun)."""

    def __init__(self, context: GateContext, store: ScoreStore, run: GateRun) -> None:
        self.context = context
        self.store = store
        self.run = run

    def evaluation(self, spec: VariantSpec) -> Evaluation:
        """The variant's evaluation, once per run (the agreement and quality gates share it)."""
        memo = self.run.evaluations
        if spec.id not in memo:
            memo[spec.id] = self._reference() if spec.id == REFERENCE_ID else self._variant(spec)
        return memo[spec.id]

    def tasks(self, dataset: EvalSet) -> list[str]:
        """Quality tasks on a set with candidate lists; none on the embedded set a --gate-tasks run measures
        agreement on (its quality comes from the mteb tasks)."""
        c = self.context
        if not any(dataset is d for d in c.datasets):
            return []
        return ["reranking"] + (["retrieval"] if c.candidate.kind == "embedder" and c.settings.retrieval else [])

    def one_look_tasks(self) -> list[tuple[EvalSet | str, str]]:
        """mteb tasks from the hub, and full-corpus retrieval on folders without candidate lists."""
        c = self.context
        tasks: list[tuple[EvalSet | str, str]] = []
        if c.candidate.kind == "embedder" and c.settings.retrieval:
            tasks += [(d, "retrieval") for d in c.datasets if not d.candidates]
        return tasks + [(t.metadata.name, "hub") for t in c.hub_tasks]

    def quality_of(self, spec: VariantSpec, dataset: EvalSet | str, task: str, scores: Scores | None = None,
                   qids: list[str] | None = None) -> TaskQuality:
        """One variant's quality on one task. With `scores` (a sequential look): on the queries scored so far;
        without: on the whole evaluation order, computed once per run (the reference's is shared)."""
        if scores is not None:
            return of_scores(dataset, task, scores, qids, spec.id, self.context.encoding)
        c, memo = self.context, self.run.quality
        key = (spec.id, dataset if isinstance(dataset, str) else dataset.name, task)
        if key not in memo:
            if task == "hub":
                hub_task = next(t for t in c.hub_tasks if t.metadata.name == dataset)
                memo[key] = evaluate_hub_task(hub_task, self.store.load(spec), c.candidate.kind, c.settings.batch_size)
            elif task == "reranking":
                memo[key] = evaluate_scores(dataset, self.store.scores(spec, dataset), spec.id)
            elif dataset.candidates:  # the corpus was encoded with the candidate lists: one pass
                memo[key] = evaluate_embeddings(dataset, self.store.scores(spec, dataset), c.order(dataset), spec.id,
                                                c.encoding)
            else:
                c.progress(f"retrieval over the full corpus of {dataset.name} ({len(dataset.corpus)} passages) "
                           f"with {spec.id}")
                memo[key] = evaluate_model(dataset, self.store.load(spec), c.order(dataset), c.settings.batch_size)
        return memo[key]

    def agreement_check(self, spec: VariantSpec) -> tuple[list[AgreementResult], list[str], dict[str, float]]:
        """(results, messages of every agreement limit crossed, the limits) of the variant's evaluation."""
        evaluation = self.evaluation(spec)
        return evaluation.agreement, evaluation.agreement_failures, self.context.thresholds.agreement_limits(
            spec.id, self.context.candidate.kind)

    def quality_check(self, spec: VariantSpec) -> tuple[list[TaskQuality], list[Decision], list[str]]:
        """(task qualities, decisions, messages of every metric decided fail) of the variant's evaluation."""
        evaluation = self.evaluation(spec)
        return evaluation.qualities, evaluation.decisions, evaluation.quality_failures()

    def _reference(self) -> Evaluation:
        c, reference = self.context, self.context.reference
        result = Evaluation(REFERENCE_ID)
        for dataset in c.evaluation_sets():
            order = c.order(dataset)
            result.qualities += [self.quality_of(reference, dataset, task) for task in self.tasks(dataset)]
            result.usage.append({"dataset": dataset.name, "queries": len(order), "available": len(order),
                                 "pairs": len(self.store.scores(reference, dataset).keys), "stopped": "reference"})
            stages = self.run.verdict.header.setdefault("first_stage", {})
            if self.tasks(dataset) and dataset.name not in stages:
                stages[dataset.name] = first_stage(dataset, order, c.settings.top_k).scores
        result.qualities += [self.quality_of(reference, d, t) for d, t in self.one_look_tasks()]
        return result

    def _variant(self, spec: VariantSpec) -> Evaluation:
        result = Evaluation(spec.id)
        for dataset in self.context.evaluation_sets():
            if self._walk_dataset(spec, dataset, result):
                return result  # broken: no more inference on it
        limits, settings = self.context.thresholds.quality_limits(spec.id), self.context.thresholds.decision
        alpha = 1 - settings["confidence"]
        for name, task in self.one_look_tasks():
            ref, variant = self.quality_of(self.context.reference, name, task), self.quality_of(spec, name, task)
            result.qualities.append(variant)
            for metric in variant.scores:
                qids = sorted(set(ref.per_query.get(metric, {})) & set(variant.per_query.get(metric, {})))
                sequence = Sequence(len(qids), len(qids), alpha)
                label = name if isinstance(name, str) else name.name
                result.decisions.append(evaluate(label, task, metric, [ref.per_query[metric][q] for q in qids],
                                                 [variant.per_query[metric][q] for q in qids],
                                                 limits[LIMIT_KEYS[metric]], sequence, 0, settings["min_queries"]))
        return result

    def _walk_dataset(self, spec: VariantSpec, dataset: EvalSet, result: Evaluation) -> bool:
        """The variant scored on one data set look by look until decided; whether agreement limits were crossed."""
        c, store = self.context, self.store
        kind = c.candidate.kind
        agreement_limits = c.thresholds.agreement_limits(spec.id, kind)
        limits, settings = c.thresholds.quality_limits(spec.id), c.thresholds.decision
        order = c.order(dataset)
        reference = store.scores(c.reference, dataset)
        references = {t: self.quality_of(c.reference, dataset, t) for t in self.tasks(dataset)}
        sequence = Sequence(len(order), settings["first_look"], 1 - settings["confidence"])
        state: dict[str, Any] = {"scores": None, "done": 0}

        def at_look(look: int, n: int) -> tuple[list[Decision], str | None]:
            state["scores"] = scores = store.score_more(spec, dataset, order[state["done"]:n], state["scores"])
            state["done"] = n
            digest = scores.digest()
            agreement = self._look(("agreement", dataset.name, digest), lambda: compare(
                spec.id, kind, reference.head(len(scores.keys)), scores, dataset))
            state["agreement"] = agreement = replace(agreement, variant=spec.id)
            state["crossed"] = crossed_records(agreement.metrics, agreement_limits, AGREEMENT_METRICS, dataset.name)
            state["qualities"] = [self._look(("quality", dataset.name, task, n, digest), lambda task=task: (
                self.quality_of(spec, dataset, task, scores, order[:n]))) for task in references]
            decisions = look_decisions(dataset.name, references, state["qualities"], order[:n],
                                       lambda metric: limits[LIMIT_KEYS[metric]], sequence, look,
                                       settings["min_queries"])
            c.progress(f"{spec.id} on {dataset.name}, look {look + 1}/{len(sequence.looks)} ({n} queries): "
                       + ", ".join(f"{d.task} {d.metric} {d.decision}" for d in decisions)
                       + (" — agreement limits crossed" if state["crossed"] else ""))
            return decisions, f"agreement limits crossed at {n} queries" if state["crossed"] else None

        decisions, done, stopped = walk(sequence, at_look)
        result.agreement.append(state["agreement"])
        result.crossed += state["crossed"]
        result.decisions += decisions
        result.qualities += state["qualities"]
        shared = self.run.shared.get((spec.id, dataset.name))
        result.usage.append({"dataset": dataset.name, "queries": done, "available": len(order),
                             "pairs": len(state["scores"].keys), "stopped": stopped,
                             **({"scores_of": shared} if shared else {})})
        return bool(state["crossed"])

    def _look(self, computed_from: tuple, compute) -> Any:
        """A look's agreement or quality, once per run for what it is computed from (the data set, the task, the
        queries, the scores' digest): a variant that runs the same model as an earlier one gets the same scores
        (Optimum's arm64, avx512 and avx512_vnni dynamic int8 presets write byte-identical graphs), and its looks'
        mteb evaluations and agreement metrics are not computed again."""
        if computed_from not in self.run.looks:
            self.run.looks[computed_from] = compute()
        return self.run.looks[computed_from]

