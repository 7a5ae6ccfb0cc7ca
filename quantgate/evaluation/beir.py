"""Reading a BEIR-format folder, every problem found before any work as one line with the file (and line).

Data a gate run cannot judge with is refused here, never blamed on a variant later: a passage with no text
scores the same in every variant and reads as "agreement"; a test set where no query has a relevant document
gives every variant a loss of 0/0 ("the observed loss sits on the limit"); a duplicate id silently keeps the
last line. What is checked: the encoding (UTF-8), each line a JSON object with string texts and string or
integer ids, no duplicate ids, no empty file, the qrels header and numeric scores, every id a file names
present in the file that defines it, a text for every evaluated query and every judged relevant passage (and not
every scored passage empty), and at least one judged relevant document a test query can reach (among its
candidates when there are candidate lists).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quantgate.errors import QuantgateUsageError

REQUIRED = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")


class DataFormatError(QuantgateUsageError):
    """A data folder that is not in BEIR format, or one the gate cannot judge with; the message says what to do."""


def read(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, dict[str, int]]],
                              dict[str, list[str]]]:
    """(corpus, queries, qrels by split, candidate lists) of a BEIR folder, checked."""
    missing = [n for n in REQUIRED if not (path / n).is_file()]
    if missing:
        raise DataFormatError(
            f"{path} is not a BEIR-format folder: missing {', '.join(missing)} "
            "(expected corpus.jsonl, queries.jsonl, qrels/test.tsv, optional candidates.jsonl)"
        )
    corpus = _texts(path / "corpus.jsonl", title=True)
    queries = _texts(path / "queries.jsonl", title=False)
    qrels = {f.stem: _qrels(f) for f in sorted((path / "qrels").glob("*.tsv"))}
    candidates: dict[str, list[str]] = {}
    if (path / "candidates.jsonl").is_file():
        candidates = _candidates(path / "candidates.jsonl", queries)
    _check_references(path, corpus, queries, qrels["test"], candidates)
    return corpus, queries, qrels, candidates


def _lines(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; an empty file, bytes that are not UTF-8, a line that is not
    JSON or not an object: one error naming the file and line."""
    seen = False
    with open(file, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(f"{file}:{lineno}: not UTF-8 text (byte {err.start} of the line); "
                                      "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{file}:{lineno}: not JSON ({err.msg})") from None
            except RecursionError:
                raise DataFormatError(f"{file}:{lineno}: not JSON (nested too deeply)") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"{file}:{lineno}: expected a JSON object, got {type(row).__name__}")
            seen = True
            yield lineno, row
    if not seen:
        raise DataFormatError(f"{file}: the file is empty; fill it (one JSON object per line) or remove it")


def _id(file: Path, lineno: int, row: dict[str, Any], key: str) -> str:
    if key not in row:
        raise DataFormatError(f"{file}:{lineno}: missing key(s) {key}")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise DataFormatError(f"{file}:{lineno}: {key} must be a non-empty string or integer, got {value!r}")
    return str(value)


def _text(file: Path, lineno: int, row: dict[str, Any], key: str, required: bool = True) -> str:
    if key not in row:
        if required:
            raise DataFormatError(f"{file}:{lineno}: missing key(s) {key}")
        return ""
    value = row[key]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DataFormatError(f"{file}:{lineno}: {key} must be a string, got {type(value).__name__}")
    return value


def _texts(file: Path, title: bool) -> dict[str, str]:
    """_id -> text (a passage's title before its text, as BEIR's evaluation joins them)."""
    out: dict[str, str] = {}
    for lineno, row in _lines(file):
        key = _id(file, lineno, row, "_id")
        text = _text(file, lineno, row, "text")
        if title and (head := _text(file, lineno, row, "title", required=False).strip()):
            text = f"{head} {text}".strip()
        if key in out:
            raise DataFormatError(f"{file}:{lineno}: _id {key!r} appears twice; ids must be unique")
        out[key] = text
    return out


def _qrels(file: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        with open(file, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t")
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
                raise DataFormatError(f"{file}: first line must be the header 'query-id<TAB>corpus-id<TAB>score'")
            for lineno, row in enumerate(reader, 2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) < 3:
                    raise DataFormatError(f"{file}:{lineno}: expected 3 tab-separated columns, got {len(row)}")
                try:
                    score = float(row[2])
                except ValueError:
                    score = math.nan
                if not math.isfinite(score) or score != int(score):
                    raise DataFormatError(f"{file}:{lineno}: score {row[2]!r} is not a whole number")
                relevance = qrels.setdefault(row[0], {})
                if row[1] in relevance:
                    raise DataFormatError(f"{file}:{lineno}: query {row[0]!r} judges document {row[1]!r} twice")
                relevance[row[1]] = int(score)
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{file}: not UTF-8 text (byte {err.start}); save the file as UTF-8") from None
    except csv.Error as err:
        raise DataFormatError(f"{file}: not tab-separated text ({err})") from None
    if file.stem == "test" and not qrels:
        raise DataFormatError(f"{file}: no judgments after the header; the test split needs at least one")
    return qrels


def _candidates(file: Path, queries: dict[str, str]) -> dict[str, list[str]]:
    """qid -> docids in first-stage order. A query named only here takes its text from the line's `query`."""
    lists: dict[str, list[str]] = {}
    for lineno, row in _lines(file):
        qid = _id(file, lineno, row, "qid")
        docs = row.get("candidates")
        if not isinstance(docs, list) or not docs:
            raise DataFormatError(f"{file}:{lineno}: candidates must be a non-empty list of {{\"docid\": ...}} "
                                  f"objects, got {docs!r:.60}")
        ids = [_id(file, lineno, c, "docid") if isinstance(c, dict) else _not_object(file, lineno, c) for c in docs]
        if len(set(ids)) != len(ids):
            twice = next(d for d in ids if ids.count(d) > 1)
            raise DataFormatError(f"{file}:{lineno}: query {qid!r} lists document {twice!r} twice")
        if qid in lists:
            raise DataFormatError(f"{file}:{lineno}: query {qid!r} has a second candidate list; one line per query")
        lists[qid] = ids
        if qid not in queries:
            query = _text(file, lineno, row, "query", required=False)
            if not query.strip():
                raise DataFormatError(f"{file}:{lineno}: query {qid!r} is not in queries.jsonl and the line has "
                                      "no \"query\" text")
            queries[qid] = query
    return lists


def _not_object(file: Path, lineno: int, value: Any) -> str:
    raise DataFormatError(f"{file}:{lineno}: each candidate must be an object with a docid, got {value!r:.40}")


def _check_references(path: Path, corpus: dict, queries: dict, test: dict, candidates: dict) -> None:
    """Every id resolves, every evaluated text is non-empty, and some test query has a relevant document it can
    reach: otherwise every variant would be judged on nothing."""
    def refuse(problem: str, examples: list[str], todo: str) -> None:
        if examples:
            raise DataFormatError(f"{path}: {problem.format(n=len(examples))} (e.g. {examples[0]!r}); {todo}")

    refuse("qrels/test.tsv names {n} queries not in queries.jsonl", [q for q in test if q not in queries],
           "add them to queries.jsonl or remove their lines")
    refuse("qrels/test.tsv names {n} documents not in corpus.jsonl",
           sorted({d for rel in test.values() for d in rel if d not in corpus}),
           "add them to corpus.jsonl or remove their lines")
    refuse("candidates.jsonl names {n} documents not in corpus.jsonl",
           sorted({d for docs in candidates.values() for d in docs if d not in corpus}),
           "add them to corpus.jsonl or remove them from the candidate lists")
    evaluated = [q for q in (candidates or test) if q in test]
    if candidates and not evaluated:
        raise DataFormatError(f"{path}: no query of candidates.jsonl is judged in qrels/test.tsv; the gates rerank "
                              "the candidate lists of test queries")
    refuse("{n} evaluated queries have no text", [q for q in evaluated if not queries[q].strip()],
           "give each a text in queries.jsonl or remove it")
    # An empty passage among many scores the same empty text in every variant (real corpora have a few); one that is
    # judged relevant can never be found, and a set of nothing but empty passages judges nothing
    passages = {d for q in evaluated for d in candidates[q]} if candidates else set(corpus)
    empty = {d for d in passages if not corpus[d].strip()}
    if empty and empty == passages:
        refuse("all {n} passages the gates score have no text (title and text empty)", sorted(empty),
               "fill corpus.jsonl's texts")
    refuse("{n} judged relevant passages have no text (title and text empty)",
           sorted({d for q in evaluated for d, r in test[q].items() if r > 0 and d in empty}),
           "give each a text, or remove their qrels lines")
    reachable = [q for q in evaluated
                 if any(r > 0 and (not candidates or d in candidates[q]) for d, r in test[q].items())]
    if not reachable:
        where = "among its candidates" if candidates else "in qrels/test.tsv"
        raise DataFormatError(f"{path}: no test query has a judged relevant document (score > 0) {where}; every "
                              "metric would be 0 for every variant. Check qrels/test.tsv and the candidate lists")
