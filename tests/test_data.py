import json
from pathlib import Path

import pytest

import quantgate
import quantgate.fixtures
from quantgate.evaluation.data import (
    DATA_ENV,
    EMBEDDED,
    DataFormatError,
    EvalSet,
    calibration_inputs,
    data_folders,
    default_data,
    load,
    validation_set,
)
from tests.conftest import ROOT


def test_embedded_set_ships_with_the_package_and_needs_nothing_beside_it():
    data = default_data()
    assert data.embedded and data.name == "quantgate-mini" and EMBEDDED.is_relative_to(Path(quantgate.__file__).parent)
    # enough queries for the sequential looks to decide past min_queries (100): 20, 40, 80, 160, 320, all
    assert len(data.test_queries) == 336 and len(data.qrels["train"]) == 72
    pairs = data.reranking_pairs()
    assert len(pairs) == 336 * 14 and all(q and p for _, _, q, p in pairs)
    assert all(2 in rel.values() for rel in data.test_qrels.values())  # every test query has its answer
    grades = [g for rel in data.test_qrels.values() for g in rel.values()]
    assert sorted(set(grades)) == [1, 2]  # graded: answers it (2), relevant (1)
    for qid, rel in data.test_qrels.items():  # every relevant passage is in the query's candidate list
        assert set(rel) <= set(data.candidates[qid])
    train_texts = {data.queries[q] for q in data.qrels["train"]}
    assert not train_texts & {data.queries[q] for q in data.test_qrels}  # calibration never sees a test query


def test_data_precedence_never_looks_beside_the_checkout(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_folders(("a", "b"), ("SciFact",)) == (["a", "b"], "--gate-data")
    assert data_folders((), ("SciFact",)) == ([], "--gate-tasks")
    assert data_folders((), ()) == ([str(EMBEDDED)], "embedded default")
    monkeypatch.setenv(DATA_ENV, "/some/beir")
    assert data_folders((), ()) == (["/some/beir"], f"${DATA_ENV}")
    assert data_folders((), ("SciFact",))[1] == "--gate-tasks"
    folders = [Path(quantgate.__file__).parent, Path(quantgate.fixtures.__file__).parent]
    for module in (m for folder in folders for m in folder.rglob("*.py")):
        text = module.read_text()  # the product never looks for (nor points users at) ../shared
        assert "../shared" not in text and '/ "shared"' not in text, module


def test_real_scifact_and_trec_dl19_load(scifact, trec_dl19):
    sf = load(scifact)
    assert len(sf.corpus) == 5183 and len(sf.test_qrels) == 300 and len(sf.reranking_pairs()) == 9000
    dl = load(trec_dl19)
    assert len(dl.reranking_pairs()) == 4300 and "train" not in dl.qrels


@pytest.mark.parametrize("kind", ["reranker", "embedder"])
def test_calibration_never_contains_an_evaluation_query(scifact, kind):
    sf = load(scifact)
    items, source = calibration_inputs([sf], kind, n=300)
    assert len(items) == 300 and "train split of scifact" in source
    test_queries = {sf.queries[q] for q in sf.test_qrels}
    used = {i[0] for i in items} if kind == "reranker" else set(items)
    assert not used & test_queries
    assert calibration_inputs([sf], kind, n=300)[0] == items  # fixed seed


def test_without_a_train_split_calibration_falls_back_to_the_shipped_set(trec_dl19):
    items, source = calibration_inputs([load(trec_dl19)], "reranker", n=50)
    assert "quantgate-mini" in source and items
    dl = load(trec_dl19)
    assert not {q for q, _ in items} & set(dl.queries.values())


def test_wrong_format_folders_get_one_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        load(tmp_path / "absent")
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    with pytest.raises(DataFormatError, match="missing queries.jsonl, qrels/test.tsv"):
        load(tmp_path)
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "y"}\n')
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(DataFormatError, match="header"):
        load(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "candidates.jsonl").write_text(json.dumps({"qid": "q1", "candidates": [{"docid": "d9"}]}) + "\n")
    with pytest.raises(DataFormatError, match="not in corpus.jsonl"):
        load(tmp_path)
    (tmp_path / "corpus.jsonl").write_text("{not json\n")
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:1: not JSON"):
        load(tmp_path)


def test_calibration_from_another_folder_never_uses_an_evaluation_query(scifact, trec_dl19):
    items, source = calibration_inputs([load(scifact)], "reranker", n=100, exclude=[load(trec_dl19)])
    assert len(items) == 100 and "scifact" in source
    assert not {q for q, _ in items} & set(load(trec_dl19).queries.values())
    few, source = calibration_inputs([default_data()], "reranker", n=300)
    assert "fewer than the 300 asked for" in source


def test_the_embedded_set_is_what_its_source_text_makes(tmp_path):
    """quantgate-mini's files are scripts/make_default_data.py's output of scripts/default_data.txt, byte for byte."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_default_data", ROOT / "scripts" / "make_default_data.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert made and all((tmp_path / p).read_bytes() == (EMBEDDED / p).read_bytes() for p in made), made


def test_a_given_validation_split_keeps_each_lists_relevant_passages_and_first_others():
    """--gate-validation-data's lists cut to [accuracy_control] validation_candidates as held-out train queries are:
    the relevant passages of each list and its first others, in the list's order."""
    ranked = [f"d{i}" for i in range(30)]
    given = EvalSet("split", Path("split"), {d: d for d in ranked}, {"q": "a query"},
                    {"test": {"q": {"d5": 1, "d25": 2, "d7": 0}}}, {"q": ranked})
    assert validation_set([], 12, 10, given=given).candidates["q"] == [*ranked[:9], "d25"]  # 8 others + d5, d25
    assert validation_set([], 12, 1, given=given).candidates["q"] == ["d0", "d5", "d25"]  # relevant + one other
    assert validation_set([], 12, 40, given=given).candidates["q"] == ranked  # no longer than the list
