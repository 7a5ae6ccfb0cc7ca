"""Local evaluation data in BEIR format, the calibration split, and the embedded default set.

A data folder holds `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv` (header
`query-id corpus-id score`) and, for reranking, an optional `candidates.jsonl`
(`{qid, query, candidates: [{docid, ...}]}`). Evaluation uses `qrels/test.tsv`;
calibration uses `qrels/train.tsv` queries only, never a test query.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA = Path(__file__).parent / "default_data" / "quantgate-mini"


class DataFormatError(ValueError):
    """A data folder that is not in BEIR format; the message says what is missing."""


@dataclass
class EvalSet:
    name: str
    path: Path
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> qid -> docid -> relevance
    candidates: dict[str, list[str]] = field(default_factory=dict)  # qid -> docids, first-stage order

    @property
    def test_qrels(self) -> dict[str, dict[str, int]]:
        return self.qrels["test"]

    @property
    def test_queries(self) -> list[str]:
        return [qid for qid in self.queries if qid in self.test_qrels]

    def reranking_pairs(self, top_k: int | None = None, max_queries: int | None = None) -> list[tuple[str, str, str, str]]:
        """(qid, docid, query, passage) for every candidate of every test query."""
        if not self.candidates:
            raise DataFormatError(f"{self.path} has no candidates.jsonl: it cannot be used for reranking")
        qids = [q for q in self.candidates if q in self.test_qrels][:max_queries]
        return [
            (qid, docid, self.queries[qid], self.corpus[docid]) for qid in qids for docid in self.candidates[qid][:top_k]
        ]

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
    """Load and check one BEIR-format folder."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataFormatError(f"data folder {str(path)!r} does not exist; pass a BEIR-format folder to --gate-data")
    missing = [n for n in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv") if not (path / n).is_file()]
    if missing:
        raise DataFormatError(
            f"{path} is not a BEIR-format folder: missing {', '.join(missing)} "
            "(expected corpus.jsonl, queries.jsonl, qrels/test.tsv, optional candidates.jsonl)"
        )
    corpus = {row["_id"]: _doc_text(row) for row in _jsonl(path / "corpus.jsonl", ("_id", "text"))}
    queries = {row["_id"]: row["text"] for row in _jsonl(path / "queries.jsonl", ("_id", "text"))}
    qrels = {f.stem: _qrels(f) for f in sorted((path / "qrels").glob("*.tsv"))}
    candidates: dict[str, list[str]] = {}
    if (path / "candidates.jsonl").is_file():
        for row in _jsonl(path / "candidates.jsonl", ("qid", "candidates")):
            candidates[str(row["qid"])] = [str(c["docid"]) for c in row["candidates"]]
            queries.setdefault(str(row["qid"]), row.get("query", ""))
    _check_ids(path, corpus, queries, qrels["test"], candidates)
    return EvalSet(path.name, path, corpus, queries, qrels, candidates)


def _doc_text(row: dict) -> str:
    title = (row.get("title") or "").strip()
    return f"{title} {row['text']}".strip() if title else row["text"]


def _jsonl(file: Path, required: tuple[str, ...]) -> list[dict]:
    rows = []
    with open(file, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{file}:{lineno}: not JSON ({err.msg})") from None
            absent = [k for k in required if k not in row]
            if absent:
                raise DataFormatError(f"{file}:{lineno}: missing key(s) {', '.join(absent)}")
            if "_id" in row:
                row["_id"] = str(row["_id"])
            rows.append(row)
    return rows


def _qrels(file: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(file, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise DataFormatError(f"{file}: first line must be the header 'query-id<TAB>corpus-id<TAB>score'")
        for lineno, row in enumerate(reader, 2):
            if len(row) < 3:
                raise DataFormatError(f"{file}:{lineno}: expected 3 tab-separated columns, got {len(row)}")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
            except ValueError:
                raise DataFormatError(f"{file}:{lineno}: score {row[2]!r} is not a number") from None
    return qrels


def _check_ids(path: Path, corpus: dict, queries: dict, test: dict, candidates: dict) -> None:
    lost_q = [q for q in test if q not in queries]
    if lost_q:
        raise DataFormatError(f"{path}: qrels/test.tsv names {len(lost_q)} queries not in queries.jsonl (e.g. {lost_q[0]})")
    lost_d = [d for docs in candidates.values() for d in docs if d not in corpus]
    if lost_d:
        raise DataFormatError(f"{path}: candidates.jsonl names {len(lost_d)} documents not in corpus.jsonl (e.g. {lost_d[0]})")


def calibration_inputs(
    sets: list[EvalSet], kind: str, n: int = 300, seed: int = 0, exclude: list[EvalSet] | None = None
) -> tuple[list, str]:
    """Calibration inputs from the train split, disjoint from every evaluation query.

    Rerankers get (query, passage) pairs: each train query with its relevant passages and
    as many random passages (negatives), so calibration sees both ends of the score range.
    Embedders get texts: train queries and their passages. Folders without a train split
    contribute nothing; when none has one, the embedded default set's train split is used.
    Returns the inputs and a description of where they came from.
    """
    usable = [s for s in sets if s.qrels.get("train")]
    if not usable:
        usable = [load(DEFAULT_DATA)]
    rng = random.Random(seed)
    # never a query that any evaluation set tests on, nor a test query of the calibration sets
    test_texts = {s.queries[q] for s in [*sets, *(exclude or [])] for q in s.test_qrels if q in s.queries}
    items: list = []
    for s in usable:
        doc_ids = sorted(s.corpus)
        for qid, rel in sorted(s.qrels["train"].items()):
            query = s.queries.get(qid)
            if query is None or qid in s.test_qrels or query in test_texts:
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


def inputs_fingerprint(items: list) -> str:
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()
