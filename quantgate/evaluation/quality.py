"""Task quality by mteb's own retrieval evaluator (the decisions on it: quantgate.decisions.decision,
quantgate.decisions.sequential).

Each local BEIR folder becomes an mteb `AbsTaskRetrieval`: with `candidates.jsonl` it is a
reranking task (`top_ranked` = the candidate lists; MAP and NDCG@10), without it a
full-corpus retrieval task (NDCG@10, embedders only). Reranking tasks replay the scores the
run already computed (`ReplaySearch`, an mteb SearchProtocol), so quality costs no inference
pass; full-corpus retrieval answers from the scoring pass's embeddings (`EmbeddingSearch`), or
encodes through mteb's SentenceTransformerEncoderWrapper for folders without candidate lists.
The adapters live in quantgate.evaluation.mteb_local.
MAP and NDCG@10 and the per-query values come from mteb (pytrec_eval underneath).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantgate.core.metrics import QUALITY
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.encoding import PLAIN, Encoding
from quantgate.evaluation.mteb_local import EmbeddingSearch, ReplaySearch, build_task
from quantgate.evaluation.scoring import Scores

# our name -> (mteb score key, pytrec_eval per-query key), and the thresholds.toml key of its limit
METRICS = {name: (m.mteb_key, m.per_query_key) for name, m in QUALITY.items()}
LIMIT_KEYS = {name: m.limit_key for name, m in QUALITY.items()}


@dataclass
class TaskQuality:
    dataset: str
    task: str  # "reranking" | "retrieval"
    scores: dict[str, float]  # metric -> mteb's value
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> qid -> value

    def to_dict(self) -> dict[str, Any]:
        """With the per-query values (full precision): a later run can use this verdict as its baseline
        (--gate-baseline verdict.json) and `quantgate history` decides regressions between runs from them."""
        return {"dataset": self.dataset, "task": self.task, "scores": self.scores, "per_query": self.per_query}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskQuality:
        return cls(data["dataset"], data["task"], dict(data["scores"]), data.get("per_query") or {})


def evaluate_scores(dataset: EvalSet, scores: Scores, name: str) -> TaskQuality:
    """Reranking quality of already computed scores, by mteb's evaluator."""
    groups = scores.by_query()
    qids = [q for q in groups if any(r > 0 for r in dataset.test_qrels.get(q, {}).values())]
    task = build_task(dataset, qids, {q: groups[q][0] for q in qids})
    return _run(task, ReplaySearch(scores, name), dataset, "reranking")


def evaluate_model(dataset: EvalSet, model, qids: list[str], batch_size: int) -> TaskQuality:
    """Full-corpus retrieval quality of an embedder, encoded through mteb's wrapper."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    task = build_task(dataset, qids, None)
    return _run(task, SentenceTransformerEncoderWrapper(model), dataset, "retrieval", batch_size)


def evaluate_embeddings(dataset: EvalSet, scores: Scores, qids: list[str], name: str,
                        encoding: Encoding = PLAIN) -> TaskQuality:
    """Full-corpus retrieval quality from the scoring pass's embeddings (made with `encoding`), by mteb's evaluator."""
    task = build_task(dataset, qids, None)
    return _run(task, EmbeddingSearch(scores, name, encoding), dataset, "retrieval")


def first_stage(dataset: EvalSet, qids: list[str], top_k: int | None) -> TaskQuality:
    """The candidate lists' own order (the first stage, e.g. BM25) scored like a variant: a reranker that
    does not beat it is visible beside the reference."""
    pairs = dataset.reranking_pairs(top_k=top_k, qids=qids)
    rank: dict[str, int] = {}
    values = []
    for qid, _, _, _ in pairs:
        rank[qid] = rank.get(qid, 0) + 1
        values.append(-float(rank[qid]))
    return evaluate_scores(dataset, Scores(dataset.name, [(q, d) for q, d, _, _ in pairs], np.array(values)),
                           "first-stage")


def _run(task, model, dataset: EvalSet, kind: str, batch_size: int = 32) -> TaskQuality:
    result = task.evaluate(model, "test", encode_kwargs={"batch_size": batch_size, "show_progress_bar": False})
    main = result["default"]
    metrics = ("map", "ndcg_at_10") if kind == "reranking" else ("ndcg_at_10",)
    per_query = {m: {q: float(v[METRICS[m][1]]) for q, v in task.per_query.items()} for m in metrics}
    return TaskQuality(dataset.name, kind, {m: float(main[METRICS[m][0]]) for m in metrics}, per_query)


def of_scores(dataset: EvalSet, task: str, scores: Scores, qids: list[str], name: str,
              encoding: Encoding = PLAIN) -> TaskQuality:
    """Quality of scores on the queries `qids` (a sequential look): reranking, or full-corpus retrieval from
    the embeddings of the same pass (made with `encoding`)."""
    if task == "reranking":
        return evaluate_scores(dataset, scores, name)
    return evaluate_embeddings(dataset, scores, qids, name, encoding)


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
