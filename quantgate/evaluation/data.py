"""Local evaluation data in BEIR format, the calibration split, and the embedded default set.

A data folder holds `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv` (header
`query-id corpus-id score`) and, for reranking, an optional `candidates.jsonl`
(`{qid, query, candidates: [{docid, ...}]}`). Evaluation uses `qrels/test.tsv`;
calibration uses `qrels/train.tsv` queries only, never a test query. Accuracy-controlled
quantization validates on a seeded share of the train queries that calibration never sees
(`split_train`), with candidate lists from a TF-IDF first stage (`validation_set`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from quantgate.evaluation import beir
from quantgate.evaluation.beir import DataFormatError

# The set the gate runs on when no data is given: written for quantgate (scripts/make_default_data.py),
# shipped inside the package, so the gate starts offline on any machine. It shows the machinery; it
# decides nothing (12 queries).
EMBEDDED = Path(__file__).resolve().parents[1] / "default_data" / "quantgate-mini"
EMBEDDED_SOURCE = "embedded default"
DATA_ENV = "QUANTGATE_DATA"  # a BEIR folder to use when neither --gate-data nor --gate-tasks is given


@dataclass
class EvalSet:
    name: str
    path: Path
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> qid -> docid -> relevance
    candidates: dict[str, list[str]] = field(default_factory=dict)  # qid -> docids, first-stage order

    @property
    def embedded(self) -> bool:
        """The shipped demonstration set: numbers from it show the machinery, not a model's quality."""
        return self.path.resolve() == EMBEDDED

    @property
    def test_qrels(self) -> dict[str, dict[str, int]]:
        return self.qrels["test"]

    @property
    def test_queries(self) -> list[str]:
        return [qid for qid in self.queries if qid in self.test_qrels]

    def reranked_queries(self, max_queries: int | None = None) -> list[str]:  # what the gates rerank, in order
        return [q for q in self.candidates if q in self.test_qrels][:max_queries]

    def reranking_pairs(self, top_k: int | None = None, max_queries: int | None = None,
                        qids: list[str] | None = None) -> list[tuple[str, str, str, str]]:
        """(qid, docid, query, passage) for every candidate of `qids` (default: every test query)."""
        if not self.candidates:
            raise DataFormatError(f"{self.path} has no candidates.jsonl: it cannot be used for reranking")
        if qids is None:
            qids = self.reranked_queries(max_queries)
        return [
            (qid, docid, self.queries[qid], self.corpus[docid])
            for qid in qids for docid in self.candidates[qid][:top_k]
        ]

    def evaluation_order(self, seed: int, budget: int | None = None) -> list[str]:
        """The test queries that can be scored (a candidate list and a relevant passage), in one seeded
        order shared by every variant, cut to `budget`. Sequential decisions look at prefixes of it."""
        qids = [q for q in (self.candidates or self.test_queries)
                if q in self.test_qrels and any(r > 0 for r in self.test_qrels[q].values())]
        random.Random(seed).shuffle(qids)
        return qids[:budget]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("corpus.jsonl", "queries.jsonl", "candidates.jsonl"):
            file = self.path / name
            if file.is_file():
                digest.update(file.read_bytes())
        for file in sorted((self.path / "qrels").glob("*.tsv")):
            digest.update(file.name.encode() + file.read_bytes())
        return digest.hexdigest()


def load(path: str | Path) -> EvalSet:
    """Load and check one BEIR-format folder (quantgate.evaluation.beir: one line for anything wrong)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataFormatError(f"data folder {str(path)!r} does not exist; pass a BEIR-format folder to --gate-data")
    corpus, queries, qrels, candidates = beir.read(path)
    return EvalSet(path.name, path, corpus, queries, qrels, candidates)


def default_data() -> EvalSet:
    """The embedded set (quantgate-mini): 336 test queries x 14 candidates with graded qrels, 72 train
    queries for calibration. The gate runs on it when no data is given; see `data_folders`."""
    return load(EMBEDDED)


def data_folders(data: tuple[str, ...], tasks: tuple[str, ...]) -> tuple[list[str], str]:
    """Which local folders a run evaluates on, and why. Precedence: --gate-data > --gate-tasks (mteb's
    own data, no local folder) > $QUANTGATE_DATA > the embedded set. Nothing else is looked for."""
    if data:
        return list(data), "--gate-data"
    if tasks:
        return [], "--gate-tasks"
    if os.environ.get(DATA_ENV):
        return [os.environ[DATA_ENV]], f"${DATA_ENV}"
    return [str(EMBEDDED)], EMBEDDED_SOURCE


def split_train(dataset: EvalSet, validation_queries: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(validation qids, calibration qids): a seeded partition of the train queries.

    Validation takes at most half of them, so calibration always keeps the rest."""
    qids = sorted(q for q, rel in dataset.qrels.get("train", {}).items()
                  if q in dataset.queries and q not in dataset.test_qrels and any(r > 0 for r in rel.values()))
    random.Random(f"validation-{seed}").shuffle(qids)
    n = min(validation_queries, len(qids) // 2)
    return sorted(qids[:n]), sorted(qids[n:])


def _with_train_split(sets: list[EvalSet]) -> list[EvalSet]:
    return [s for s in sets if s.qrels.get("train")] or [default_data()]


def _test_texts(sets: list[EvalSet]) -> set[str]:
    return {s.queries[q] for s in sets for q in s.test_qrels if q in s.queries}


def calibration_inputs(
    sets: list[EvalSet], kind: str, n: int = 300, seed: int = 0, exclude: list[EvalSet] | None = None,
    validation_queries: int = 0,
) -> tuple[list, str]:
    """Calibration inputs from the train split, disjoint from every evaluation query.

    Rerankers get (query, passage) pairs: each train query with its relevant passages and
    as many random passages (negatives), so calibration sees both ends of the score range.
    Embedders get texts: train queries and their passages. Folders without a train split
    contribute nothing; when none has one, the embedded default set's train split is used.
    The `validation_queries` held out by `split_train` are never used.
    Returns the inputs and a description of where they came from.
    """
    usable = _with_train_split(sets)
    rng = random.Random(seed)
    # never a query that any evaluation set tests on, nor a test query of the calibration sets
    test_texts = _test_texts([*sets, *(exclude or [])])
    items: list = []
    for s in usable:
        doc_ids = sorted(s.corpus)
        held_out = {s.queries[q] for q in split_train(s, validation_queries, seed)[0]}  # texts: claims repeat
        for qid, rel in sorted(s.qrels["train"].items()):
            query = s.queries.get(qid)
            if query is None or qid in s.test_qrels or query in test_texts or query in held_out:
                continue
            positives = [d for d, r in rel.items() if r > 0 and d in s.corpus]
            negatives = rng.sample(doc_ids, k=min(len(positives) or 1, len(doc_ids)))
            if kind == "reranker":
                items.extend((query, s.corpus[d]) for d in positives + negatives)
            else:
                items.append(query)
                items.extend(s.corpus[d] for d in positives)
    rng.shuffle(items)
    items = items[:n]
    if not items:
        raise DataFormatError("no calibration inputs: no data folder has a qrels/train.tsv with known queries")
    source = (f"{len(items)} {'pairs' if kind == 'reranker' else 'texts'} from the train split of "
              f"{', '.join(s.name for s in usable)}" + (f" (fewer than the {n} asked for)" if len(items) < n else ""))
    return items, source


def validation_set(sets: list[EvalSet], n_queries: int, candidates: int, seed: int = 0,
                   exclude: list[EvalSet] | None = None, given: EvalSet | None = None) -> EvalSet:
    """The validation split of accuracy-controlled quantization, disjoint from calibration and
    from every evaluation query. Its "test" split holds the validation queries, so the gate's own
    scoring and mteb evaluation run on it.

    `given` (--gate-validation-data, e.g. one half of `quantgate split`): its first `n_queries` test
    queries, each with the relevant passages of its list and the list's first others, `candidates` in
    all. Otherwise held-out train queries (`split_train`), each with its relevant passages and the
    passages a TF-IDF first stage (scikit-learn) ranks highest.
    A candidate fine-tuned on that train split finds them easy: pass a split of unseen queries.
    """
    test_texts = _test_texts([*sets, *(exclude or [])])
    if given is not None:
        return _given_validation(given, n_queries, candidates, test_texts)
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 -- ~1 s; accuracy control only

    corpus, queries, qrels, lists = {}, {}, {}, {}
    usable = _with_train_split(sets)
    for s in usable:
        qids = [q for q in split_train(s, n_queries, seed)[0] if s.queries[q] not in test_texts]
        if not qids:
            continue
        doc_ids = sorted(s.corpus)
        vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english")
        matrix = vectorizer.fit_transform([s.corpus[d] for d in doc_ids])
        similarity = (vectorizer.transform([s.queries[q] for q in qids]) @ matrix.T).toarray()
        for row, qid in enumerate(qids):
            relevant = [d for d, r in sorted(s.qrels["train"][qid].items()) if r > 0 and d in s.corpus]
            ranked = [doc_ids[i] for i in similarity[row].argsort()[::-1][: candidates + len(relevant)]]
            chosen = (relevant + [d for d in ranked if d not in relevant])[:max(candidates, len(relevant) + 1)]
            key = f"{s.name}/{qid}"
            queries[key], qrels[key], lists[key] = s.queries[qid], {f"{s.name}/{d}": 1 for d in relevant}, \
                [f"{s.name}/{d}" for d in sorted(chosen)]
            corpus.update({f"{s.name}/{d}": s.corpus[d] for d in chosen})
    if not lists:
        raise DataFormatError("no validation queries: no data folder has a qrels/train.tsv with enough queries")
    name = "validation(" + ",".join(s.name for s in usable) + ")"
    return EvalSet(name, usable[0].path, corpus, queries, {"test": qrels}, lists)


def validation_sample(validation: EvalSet, n_queries: int) -> EvalSet:
    """`n_queries` of a validation split's queries, a seeded sample (a smaller sample is part of a larger one), with
    the split's name: what the time guard tunes on when the whole split does not fit the budget."""
    qids = sorted(validation.candidates)
    random.Random("validation-sample").shuffle(qids)
    return dataclasses.replace(validation, candidates={q: validation.candidates[q] for q in sorted(qids[:n_queries])})


def _given_validation(given: EvalSet, n_queries: int, candidates: int, test_texts: set[str]) -> EvalSet:
    if not given.candidates:
        raise DataFormatError(f"--gate-validation-data {given.path}: needs a candidates.jsonl (the lists to rerank)")
    qids = [q for q in given.candidates if any(r > 0 for r in given.test_qrels.get(q, {}).values())][:n_queries]
    shared = [q for q in qids if given.queries[q] in test_texts]
    if shared:
        raise DataFormatError(f"--gate-validation-data {given.path}: {len(shared)} of its queries are evaluation "
                              f"queries too (e.g. {given.queries[shared[0]][:60]!r}); validation must be disjoint "
                              "from evaluation: `quantgate split` makes two disjoint folders")
    if not qids:
        raise DataFormatError(f"--gate-validation-data {given.path}: no query with a relevant candidate")
    lists = {}
    for q in qids:  # as for held-out train queries: the relevant passages, then the list's first ones
        ranked = given.candidates[q]
        relevant = [d for d in ranked if given.test_qrels[q].get(d, 0) > 0]
        others = [d for d in ranked if d not in relevant][:max(candidates, len(relevant) + 1) - len(relevant)]
        kept = set(relevant + others)
        lists[q] = [d for d in ranked if d in kept]
    return dataclasses.replace(given, name=f"validation({given.name})", candidates=lists)


def inputs_fingerprint(items: list) -> str:
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()
