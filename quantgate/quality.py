"""Task quality by mteb's own retrieval evaluator, and relative loss with a paired bootstrap.

Each local BEIR folder becomes an mteb `AbsTaskRetrieval`: with `candidates.jsonl` it is a
reranking task (`top_ranked` = the candidate lists; MAP and NDCG@10), without it a
full-corpus retrieval task (NDCG@10, embedders only). Reranking tasks replay the scores the
run already computed (`ReplaySearch`, an mteb SearchProtocol), so quality costs no inference
pass; full-corpus retrieval answers from the scoring pass's embeddings (`EmbeddingSearch`), or
encodes through mteb's SentenceTransformerEncoderWrapper for folders without candidate lists.
The adapters live in quantgate.mteb_local.
MAP and NDCG@10 and the per-query values come from mteb (pytrec_eval underneath).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from quantgate.data import EvalSet
from quantgate.errors import QuantgateUsageError
from quantgate.mteb_local import EmbeddingSearch, ReplaySearch, build_task
from quantgate.scoring import Scores

# mteb score key -> (our name, pytrec_eval per-query key)
METRICS = {"map": ("map_at_1000", "map_cut_1000"), "ndcg_at_10": ("ndcg_at_10", "ndcg_cut_10")}
LIMIT_KEYS = {"map": "reranking_map_max_loss", "ndcg_at_10": "retrieval_ndcg10_max_loss"}


@dataclass
class TaskQuality:
    dataset: str
    task: str  # "reranking" | "retrieval"
    scores: dict[str, float]  # metric -> mteb's value
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> qid -> value

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "task": self.task, "scores": self.scores}


@dataclass
class Loss:
    dataset: str
    task: str
    metric: str
    reference: float
    variant: float
    loss: float  # (reference - variant) / reference
    ci_low: float
    ci_high: float
    limit: float
    rule: str
    queries: int

    def failure(self) -> str | None:
        value = self.ci_high if self.rule == "strict" and self.queries else self.loss
        if value > self.limit:
            what = "95% CI upper end" if self.rule == "strict" else "relative loss"
            interval = (f"95% CI [{self.ci_low:+.2%}, {self.ci_high:+.2%}], {self.queries} queries"
                        if self.queries else "no per-query values: no interval")
            return (f"[{self.dataset} {self.task}] {self.metric}: {what} {value:.2%} > limit {self.limit:.2%} "
                    f"(reference {self.reference:.4f}, variant {self.variant:.4f}, loss {self.loss:+.2%}, {interval})")
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_scores(dataset: EvalSet, scores: Scores, name: str) -> TaskQuality:
    """Reranking quality of already computed scores, by mteb's evaluator."""
    groups = scores.by_query()
    qids = [q for q in groups if any(r > 0 for r in dataset.test_qrels.get(q, {}).values())]
    task = build_task(dataset, qids, {q: groups[q][0] for q in qids})
    return _run(task, ReplaySearch(scores, name), dataset, "reranking")


def retrieval_qids(dataset: EvalSet, max_queries: int | None) -> list[str]:
    return [q for q in dataset.test_queries if any(r > 0 for r in dataset.test_qrels[q].values())][:max_queries]


def evaluate_model(dataset: EvalSet, model, max_queries: int | None, batch_size: int) -> TaskQuality:
    """Full-corpus retrieval quality of an embedder, encoded through mteb's wrapper."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    task = build_task(dataset, retrieval_qids(dataset, max_queries), None)
    return _run(task, SentenceTransformerEncoderWrapper(model), dataset, "retrieval", batch_size)


def evaluate_embeddings(dataset: EvalSet, scores: Scores, max_queries: int | None, name: str) -> TaskQuality:
    """Full-corpus retrieval quality from the scoring pass's embeddings, by mteb's evaluator."""
    task = build_task(dataset, retrieval_qids(dataset, max_queries), None)
    return _run(task, EmbeddingSearch(scores, name), dataset, "retrieval")


def _run(task, model, dataset: EvalSet, kind: str, batch_size: int = 32) -> TaskQuality:
    result = task.evaluate(model, "test", encode_kwargs={"batch_size": batch_size, "show_progress_bar": False})
    main = result["default"]
    metrics = ("map", "ndcg_at_10") if kind == "reranking" else ("ndcg_at_10",)
    per_query = {m: {q: float(v[METRICS[m][1]]) for q, v in task.per_query.items()} for m in metrics}
    return TaskQuality(dataset.name, kind, {m: float(main[METRICS[m][0]]) for m in metrics}, per_query)


def relative_loss(reference: TaskQuality, variant: TaskQuality, metric: str, limit: float, rule: str,
                  resamples: int = 1000, seed: int = 0) -> Loss:
    """Point loss from mteb's numbers; 95% CI from a paired bootstrap over queries."""
    r, v = reference.scores[metric], variant.scores[metric]
    loss = (r - v) / r if r else 0.0
    if not reference.per_query.get(metric):
        return Loss(reference.dataset, reference.task, metric, r, v, float(loss), float("nan"), float("nan"), limit,
                    rule, 0)
    qids = sorted(reference.per_query[metric])
    ref = np.array([reference.per_query[metric][q] for q in qids])
    var = np.array([variant.per_query[metric].get(q, 0.0) for q in qids])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(qids), size=(resamples, len(qids)))
    ref_means, var_means = ref[idx].mean(axis=1), var[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(ref_means > 0, (ref_means - var_means) / ref_means, 0.0)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Loss(reference.dataset, reference.task, metric, r, v, float(loss), float(low), float(high), limit, rule,
                len(qids))


def quality_of(gate, spec, dataset: EvalSet | str, task: str) -> TaskQuality:
    """One variant's quality on one task, computed once per run (the reference's is shared)."""
    memo = gate.run.quality
    key = (spec.id, dataset if isinstance(dataset, str) else dataset.name, task)
    if key not in memo:
        if task == "hub":
            hub_task = next(t for t in gate.hub_tasks if t.metadata.name == dataset)
            memo[key] = evaluate_hub_task(hub_task, gate.factory.load(spec), gate.candidate.kind,
                                          gate.settings.batch_size)
        elif task == "reranking":
            memo[key] = evaluate_scores(dataset, gate.scores(spec, dataset), spec.id)
        elif dataset.candidates:  # the corpus was encoded with the candidate lists: one pass
            memo[key] = evaluate_embeddings(dataset, gate.scores(spec, dataset), gate.settings.max_queries, spec.id)
        else:
            gate.progress(f"retrieval over the full corpus of {dataset.name} ({len(dataset.corpus)} passages) "
                          f"with {spec.id}")
            memo[key] = evaluate_model(dataset, gate.factory.load(spec), gate.settings.max_queries,
                                       gate.settings.batch_size)
    return memo[key]


def tasks_for(gate) -> list[tuple[EvalSet | str, str]]:
    """Reranking on every set with candidate lists; full-corpus retrieval for embedders; mteb
    tasks named with --gate-tasks (loaded from the hub)."""
    tasks = [(d, "reranking") for d in gate.datasets if d.candidates]
    if gate.candidate.kind == "embedder" and gate.settings.retrieval:
        tasks += [(d, "retrieval") for d in gate.datasets]
    return tasks + [(t.metadata.name, "hub") for t in gate.hub_tasks]


def check_variant(gate, spec) -> tuple[list[TaskQuality], list[Loss], list[str]]:
    limits = gate.thresholds.quality_limits(spec.id)
    qualities, losses, failures = [], [], []
    for dataset, task in tasks_for(gate):
        reference = quality_of(gate, gate.reference, dataset, task)
        variant = quality_of(gate, spec, dataset, task)
        qualities.append(variant)
        for metric in variant.scores:
            loss = relative_loss(reference, variant, metric, limits[LIMIT_KEYS[metric]], limits["rule"],
                                 limits["bootstrap_resamples"], limits["seed"])
            losses.append(loss)
            if message := loss.failure():
                failures.append(message)
    return qualities, losses, failures


class HubTaskError(RuntimeError):
    """An mteb task named with --gate-tasks could not be run (no hub offline, wrong kind...)."""


def hub_tasks(names: list[str]) -> list:
    """mteb tasks by name (metadata only: no download yet); unknown names get mteb's did-you-mean."""
    if not names:
        return []
    import mteb

    tasks = []
    for name in names:
        try:
            tasks.append(mteb.get_task(name))
        except KeyError as err:
            raise QuantgateUsageError(f"--gate-tasks: {err.args[0] if err.args else name}") from None
    return tasks


def evaluate_hub_task(task, model, kind: str, batch_size: int) -> TaskQuality:
    """Quality on an mteb task loaded from the hub (the real path; it needs network)."""
    from mteb.models.sentence_transformer_wrapper import CrossEncoderWrapper, SentenceTransformerEncoderWrapper

    name = task.metadata.name
    try:
        task.load_data()
    except Exception as err:  # datasets raises ConnectionError/OfflineModeIsEnabled/HfHubHTTPError...
        raise HubTaskError(
            f"mteb task {name}: cannot load its data from the Hugging Face Hub ({type(err).__name__}); the hub is "
            "unreachable from here. Use --gate-data with a local BEIR folder (corpus.jsonl, queries.jsonl, "
            "qrels/test.tsv, candidates.jsonl) instead."
        ) from None
    captured: dict[str, dict[str, float]] = {}

    def keep(scores, *args, **kwargs):
        captured.update(scores)
        return {}

    task.task_specific_scores = keep
    wrapped = CrossEncoderWrapper(model) if kind == "reranker" else SentenceTransformerEncoderWrapper(model)
    split = task.metadata.eval_splits[0]
    try:
        result = task.evaluate(wrapped, split, encode_kwargs={"batch_size": batch_size, "show_progress_bar": False})
    except (TypeError, ValueError) as err:
        raise HubTaskError(f"mteb task {name} cannot evaluate a {kind}: {err}") from None
    main = next(iter(result.values()))
    metric = "map" if task.metadata.type == "Reranking" else "ndcg_at_10"
    per_query = {metric: {q: float(v[METRICS[metric][1]]) for q, v in captured.items()}} if captured else {}
    kind_name = "reranking" if metric == "map" else "retrieval"
    return TaskQuality(name, kind_name, {metric: float(main[METRICS[metric][0]])}, per_query)
