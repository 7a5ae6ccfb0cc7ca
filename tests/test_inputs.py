"""Bad data and thresholds files, before any work: each fault one line naming the file (and line), never another
exception.

The tables here are docs/faults.md's rows for data and thresholds; the fuzz tests (hypothesis, a fixed example
budget, derandomized so CI runs the same examples) mutate valid files at random and accept only a clean load or
the one usage error. The candidate's files: tests/test_candidate_files.py; the same faults through a gate run and
the tools around the verdict: tests/test_fault_runs.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantgate.config import ThresholdsError, load_thresholds
from quantgate.evaluation.data import EMBEDDED, DataFormatError, load
from tests.conftest import ROOT

FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _copy(tmp: Path) -> Path:
    folder = tmp / "data"
    shutil.copytree(EMBEDDED, folder)
    return folder


def _rows(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines() if line.strip()]


def _write(folder: Path, name: str, rows: list) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _edit(name: str, change):
    def apply(folder: Path) -> None:
        rows = _rows(folder, name)
        change(rows)
        _write(folder, name, rows)
    return apply


def _text(name: str, text: str | bytes):
    def apply(folder: Path) -> None:
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return apply


def _every(key: str, value):
    return lambda rows: [r.__setitem__(key, value) for r in rows]


def _relevant_gone(folder: Path) -> None:  # every judged document scored 0
    lines = (folder / "qrels" / "test.tsv").read_text().splitlines()
    (folder / "qrels" / "test.tsv").write_text("\n".join([lines[0], *(line.rsplit("\t", 1)[0] + "\t0"
                                                                       for line in lines[1:])]) + "\n")


def _relevant_not_candidates(folder: Path) -> None:  # no query's candidate list holds a passage relevant to it
    relevant: dict[str, set[str]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, docid, _ = line.split("\t")
        relevant.setdefault(qid, set()).add(docid)
    rows = _rows(folder, "candidates.jsonl")
    for row in rows:
        row["candidates"] = [c for c in row["candidates"] if c["docid"] not in relevant.get(row["qid"], set())]
    _write(folder, "candidates.jsonl", rows)


DATA_FAULTS = {
    "corpus-not-utf8": (_text("corpus.jsonl", b'{"_id": "d", "text": "caf\xe9"}\n'), r"corpus.jsonl:1: not UTF-8"),
    "corpus-empty-file": (_text("corpus.jsonl", ""), r"corpus.jsonl: the file is empty"),
    "corpus-line-is-a-list": (_text("corpus.jsonl", '["d1", "text"]\n'), r"corpus.jsonl:1: expected a JSON object"),
    "corpus-not-json": (_text("corpus.jsonl", "{not json\n"), r"corpus.jsonl:1: not JSON"),
    "passage-text-null": (_edit("corpus.jsonl", lambda rows: rows[3].__setitem__("text", None)),
                          r"corpus.jsonl:4: text must be a string"),
    "passage-id-missing": (_edit("corpus.jsonl", lambda rows: rows[0].pop("_id")),
                           r"corpus.jsonl:1: missing key\(s\) _id"),
    "passage-id-twice": (_edit("corpus.jsonl", lambda rows: rows[5].__setitem__("_id", rows[4]["_id"])),
                         r"corpus.jsonl:6: _id '.+' appears twice"),
    "every-passage-empty": (_edit("corpus.jsonl", _every("text", "")), r"all \d+ passages the gates score have no "
                                                                       r"text"),
    "relevant-passage-empty": (_edit("corpus.jsonl", lambda rows: rows[0].__setitem__("text", " ")),
                               r"1 judged relevant passages have no text"),
    "query-empty": (_edit("queries.jsonl", lambda rows: rows[0].__setitem__("text", "  ")),
                    r"1 evaluated queries have no text"),
    "query-id-twice": (_edit("queries.jsonl", lambda rows: rows[1].__setitem__("_id", rows[0]["_id"])),
                       r"queries.jsonl:2: _id '.+' appears twice"),
    "candidates-empty-file": (_text("candidates.jsonl", ""), r"candidates.jsonl: the file is empty"),
    "candidate-without-docid": (_edit("candidates.jsonl", lambda rows: rows[0]["candidates"][0].pop("docid")),
                                r"candidates.jsonl:1: missing key\(s\) docid"),
    "candidate-list-empty": (_edit("candidates.jsonl", lambda rows: rows[2].__setitem__("candidates", [])),
                             r"candidates.jsonl:3: candidates must be a non-empty list"),
    "candidate-listed-twice": (_edit("candidates.jsonl", lambda rows: rows[0]["candidates"].append(
        rows[0]["candidates"][0])), r"candidates.jsonl:1: query '.+' lists document '.+' twice"),
    "candidate-query-twice": (_edit("candidates.jsonl", lambda rows: rows.append(rows[0])),
                              r"candidates.jsonl:337: query '.+' has a second candidate list"),
    "candidate-unknown-query": (_edit("candidates.jsonl", lambda rows: [r.update(qid=f"x-{r['qid']}", query="")
                                                                        for r in rows]),
                                r"candidates.jsonl:1: query 'x-.+' is not in queries.jsonl"),
    "candidate-unknown-doc": (_edit("candidates.jsonl", lambda rows: rows[0]["candidates"].append({"docid": "d9"})),
                              r"candidates.jsonl names 1 documents not in corpus.jsonl"),
    "candidates-of-untested-queries": (_edit("candidates.jsonl", lambda rows: [r.update(qid=f"x-{r['qid']}")
                                                                               for r in rows]),
                                       r"no query of candidates.jsonl is judged in qrels/test.tsv"),
    "qrels-header-only": (_text("qrels/test.tsv", "query-id\tcorpus-id\tscore\n"), r"test.tsv: no judgments"),
    "qrels-no-header": (_text("qrels/test.tsv", "q1\td1\t1\n"), r"first line must be the header"),
    "qrels-score-not-a-number": (_text("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq-compost-0\tcompost-0\thigh\n"),
                                 r"test.tsv:2: score 'high' is not a whole number"),
    "qrels-score-infinite": (_text("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq-compost-0\tcompost-0\tinf\n"),
                             r"test.tsv:2: score 'inf' is not a whole number"),
    "qrels-unknown-doc": (_text("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq-compost-0\tnowhere\t1\n"),
                          r"qrels/test.tsv names 1 documents not in corpus.jsonl"),
    "qrels-unknown-query": (_text("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq-nobody\tcompost-0\t1\n"),
                            r"qrels/test.tsv names 1 queries not in queries.jsonl"),
    "qrels-judged-twice": (_text("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq-compost-0\tcompost-0\t1\n"
                                                   "q-compost-0\tcompost-0\t2\n"), r"test.tsv:3: .+ twice"),
    "no-relevant-document": (_relevant_gone, r"no test query has a judged relevant document"),
    "no-relevant-candidate": (_relevant_not_candidates, r"no test query has a judged relevant document \(score > 0\) "
                                                        r"among its candidates"),
}


@pytest.mark.parametrize("fault", DATA_FAULTS)
def test_each_data_fault_is_one_line_naming_the_file(tmp_path, fault):
    folder = _copy(tmp_path)
    load(folder)  # the copy is valid
    mutate, message = DATA_FAULTS[fault]
    mutate(folder)
    with pytest.raises(DataFormatError, match=message) as caught:
        load(folder)
    assert "\n" not in str(caught.value) and str(folder) in str(caught.value)


def test_an_empty_passage_nobody_judged_relevant_is_accepted(tmp_path):
    """Real corpora hold a few empty passages: each scores the same empty text in every variant, so it is kept."""
    folder = _copy(tmp_path)
    relevant = {line.split("\t")[1] for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    rows = _rows(folder, "corpus.jsonl")
    unjudged = next(r for r in rows if r["_id"] not in relevant)
    unjudged["text"] = ""
    _write(folder, "corpus.jsonl", rows)
    assert load(folder).corpus[unjudged["_id"]] == ""


FILES = ["corpus.jsonl", "queries.jsonl", "candidates.jsonl", "qrels/test.tsv", "qrels/train.tsv"]


@st.composite
def _mutation(draw):
    """A file of the valid set and one edit of its bytes: cut, a byte replaced, a span deleted or repeated."""
    name = draw(st.sampled_from(FILES))
    data = (EMBEDDED / name).read_bytes()
    where = draw(st.integers(0, len(data)))
    edit = draw(st.sampled_from(["truncate", "replace", "delete", "repeat", "insert"]))
    span = draw(st.integers(1, 64))
    if edit == "truncate":
        data = data[:where]
    elif edit == "replace":
        data = data[:where] + bytes([draw(st.integers(0, 255))]) + data[where + 1:]
    elif edit == "delete":
        data = data[:where] + data[where + span:]
    elif edit == "repeat":
        data = data[:where + span] + data[where:]
    else:
        data = data[:where] + draw(st.binary(min_size=1, max_size=span)) + data[where:]
    return name, data


@FUZZ
@given(change=_mutation())
def test_random_byte_edits_load_or_raise_the_one_usage_error(tmp_path_factory, change):
    folder = _copy(tmp_path_factory.mktemp("fuzz"))
    name, data = change
    (folder / name).write_bytes(data)
    try:
        load(folder)
    except DataFormatError as err:
        assert "\n" not in str(err) and str(folder) in str(err)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                   max_size=3), max_leaves=6)


@FUZZ
@given(file=st.sampled_from(["corpus.jsonl", "queries.jsonl", "candidates.jsonl"]), line=st.integers(0, 11),
       key=st.sampled_from(["_id", "text", "title", "qid", "query", "candidates", "docid"]), value=_JSON)
def test_random_json_values_load_or_raise_the_one_usage_error(tmp_path_factory, file, line, key, value):
    folder = _copy(tmp_path_factory.mktemp("fuzz"))
    rows = _rows(folder, file)
    row = rows[line % len(rows)]
    if key == "docid":
        row = row.get("candidates", [row])[0]
    row[key] = value
    _write(folder, file, rows)
    try:
        load(folder)
    except DataFormatError as err:
        assert "\n" not in str(err) and str(folder) in str(err)


# -- thresholds.toml -----------------------------------------------------------------------------------------------

THRESHOLD_FAULTS = {
    "quality-limit-500%": ("[quality]\nreranking_map_max_loss = 5.0\n", r"quality.reranking_map_max_loss: must be"),
    "quality-limit-nan": ("[quality]\nretrieval_ndcg10_max_loss = nan\n", r"retrieval_ndcg10_max_loss: must be"),
    "tau-above-one": ("[agreement.reranker]\nkendall_tau_mean = 1.5\n", r"kendall_tau_mean: must be"),
    "cosine-above-one": ('[variants."onnx".agreement]\ncosine_min = 2\n', r"cosine_min: must be"),
    "min-queries-negative": ("[decision]\nmin_queries = -5\n", r"decision.min_queries: must be at least 1"),
    "confidence-percent": ("[decision]\nconfidence = 95\n", r"decision.confidence: must be between 0.5 and 1"),
    "history-runs-zero": ("[speed]\nhistory_runs = 0\n", r"speed.history_runs: must be at least 1"),
    "regression-loss-over-one": ("[regression]\nmax_loss = 1.2\n", r"regression.max_loss: must be"),
    "samples-zero": ("[calibration]\nsamples = 0\n", r"calibration.samples: must be at least 1"),
    "format-loss-over-one": ("[embedding_formats.max_loss]\nbinary = 3\n", r"max_loss.binary: must be"),
    "not-toml": ("[quality\n", r"not valid TOML"),
    "wrong-type": ("[decision]\nmin_queries = \"many\"\n", r"decision.min_queries: must be int"),
}


@pytest.mark.parametrize("fault", THRESHOLD_FAULTS)
def test_each_thresholds_fault_is_one_line_with_file_line_and_key(tmp_path, fault):
    text, message = THRESHOLD_FAULTS[fault]
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    with pytest.raises(ThresholdsError, match=message) as caught:
        load_thresholds(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@FUZZ
@given(where=st.integers(0, 10_000), edit=st.sampled_from(["truncate", "replace", "delete", "number"]),
       value=st.sampled_from(["-1", "0", "1e9", "nan", "inf", "-inf", "1.5", "\"x\"", "true", "[]", "{}", "0.5"]))
def test_random_thresholds_edits_load_or_raise_the_one_usage_error(tmp_path_factory, where, edit, value):
    text = (ROOT / "thresholds.toml").read_text()
    where %= len(text)
    if edit == "truncate":
        text = text[:where]
    elif edit == "delete":
        text = text[:where] + text[where + 7:]
    elif edit == "replace":
        text = text[:where] + "=" + text[where + 1:]
    else:  # a value replaced: the number after the next " = "
        start = text.find(" = ", where)
        if start >= 0:
            end = text.find(" ", start + 3)
            text = text[:start + 3] + value + text[end if end > 0 else len(text):]
    path = tmp_path_factory.mktemp("fuzz") / "thresholds.toml"
    path.write_text(text)
    try:
        load_thresholds(path)
    except ThresholdsError as err:
        assert "\n" not in str(err) and str(path) in str(err)


def test_a_thresholds_pattern_that_matches_no_variant_is_refused(tmp_path):
    from quantgate.session.core import GateSession, GateSettings

    path = tmp_path / "thresholds.toml"
    path.write_text((ROOT / "thresholds.toml").read_text() + '\n[variants."onnx-q8*".agreement]\ncosine_min = 0.9\n')
    with pytest.raises(ThresholdsError, match=r'\[variants."onnx-q8\*"\] matches no variant id'):
        GateSession(GateSettings(thresholds=str(path)))
    GateSession(GateSettings(thresholds=str(ROOT / "thresholds.toml")))  # the project's own patterns all match
