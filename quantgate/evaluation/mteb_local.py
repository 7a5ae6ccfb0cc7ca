"""mteb adapters for local data: a BEIR folder as an mteb retrieval/reranking task, and
SearchProtocols that hand mteb's evaluator scores or embeddings this run already computed."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.encoding import PLAIN, Encoding
from quantgate.evaluation.scoring import Scores


def _task_class():
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    class LocalRetrievalTask(AbsTaskRetrieval):
        """An mteb retrieval/reranking task over a local BEIR folder."""

        per_query: dict[str, dict[str, float]] = {}

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.data_loaded = True

        def task_specific_scores(self, scores, qrels, results, hf_split, hf_subset):
            self.per_query = scores  # pytrec_eval's per-query values, as mteb computed them
            return {}

    return LocalRetrievalTask


def build_task(dataset: EvalSet, qids: list[str], top_ranked: dict[str, list[str]] | None):
    from datasets import Dataset
    from mteb.abstasks.task_metadata import TaskMetadata

    reranking = top_ranked is not None
    docs = sorted({d for q in qids for d in top_ranked[q]}) if reranking else sorted(dataset.corpus)
    cls = _task_class()
    metadata = TaskMetadata(
        name=f"quantgate-{dataset.name}-{'reranking' if reranking else 'retrieval'}",
        description=f"Local BEIR data {dataset.path}",
        reference=None,
        dataset={"path": str(dataset.path), "revision": dataset.fingerprint()[:12]},
        type="Reranking" if reranking else "Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="map_at_1000" if reranking else "ndcg_at_10",
        date=None, domains=None, task_subtypes=None, license=None, annotations_creators=None,
        dialect=None, sample_creation=None, bibtex_citation="",
    )
    cls.metadata = metadata
    task = cls()
    qrels = {q: dict(dataset.test_qrels[q]) for q in qids}
    task.dataset = {"default": {"test": {
        "queries": Dataset.from_list([{"id": q, "text": dataset.queries[q]} for q in qids]),
        "corpus": Dataset.from_list([{"id": d, "text": dataset.corpus[d], "title": ""} for d in docs]),
        "relevant_docs": qrels,
        "top_ranked": {q: list(top_ranked[q]) for q in qids} if reranking else None,
    }}}
    task.data_loaded = True
    return task


class ReplaySearch:
    """An mteb SearchProtocol that answers with scores this run already computed."""

    def __init__(self, scores: Scores, name: str):
        from mteb.models.model_meta import ModelMeta

        self.scores = scores
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": f"quantgate/{name}"}) \
            if hasattr(ModelMeta, "create_empty") else None

    def index(self, corpus, **kwargs: Any) -> None:
        pass

    def search(self, queries, *, top_ranked=None, **kwargs: Any) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {q: {} for q in queries["id"]}
        for (qid, docid), value in zip(self.scores.keys, self.scores.scores):
            if qid in out:
                out[qid][docid] = float(value)
        return out


class EmbeddingSearch(ReplaySearch):
    """An mteb SearchProtocol for full-corpus retrieval from embeddings this run already computed
    (the corpus was encoded in the scoring pass, with retrieval's prompts): exact search by the model's similarity,
    mteb's evaluator on top."""

    def __init__(self, scores: Scores, name: str, encoding: Encoding = PLAIN):
        super().__init__(scores, name)
        self.encoding = encoding

    def index(self, corpus, **kwargs: Any) -> None:
        rows = {t: i for i, t in enumerate(self.scores.texts)}
        self.doc_ids = list(corpus["id"])
        self.doc_matrix = self.scores.embeddings[[rows[self.encoding.key("retrieval", "document", t)]
                                                  for t in corpus["text"]]]
        self.rows = rows

    def search(self, queries, *, top_k: int = 1000, **kwargs: Any) -> dict[str, dict[str, float]]:
        query_matrix = self.scores.embeddings[[self.rows[self.encoding.key("retrieval", "query", t)]
                                               for t in queries["text"]]]
        similarity = self.encoding.matrix(query_matrix, self.doc_matrix)
        k = min(top_k, similarity.shape[1])
        out = {}
        for qid, row in zip(queries["id"], similarity):
            best = np.argpartition(-row, k - 1)[:k]
            out[qid] = {self.doc_ids[i]: float(row[i]) for i in best}
        return out
