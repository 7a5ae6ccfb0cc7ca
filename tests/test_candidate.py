import json
import shutil

import pytest

from quantgate.core.candidate import CandidateError, detect_kind, hash_dir, resolve


def test_cross_encoder_saved_by_st5_is_a_reranker_despite_modules_json(shared_reranker):
    assert (shared_reranker / "modules.json").is_file()
    kind, reason = detect_kind(shared_reranker)
    assert kind == "reranker" and "CrossEncoder" in reason


def test_embedded_default_is_an_embedder():
    candidate = resolve(None)
    assert candidate.kind == "embedder" and "Pooling" in candidate.kind_reason
    assert "all-MiniLM-L6-v2" in candidate.source and len(candidate.content_hash) == 64


def test_bare_sequence_classification_checkpoint_is_a_reranker(tiny_reranker):
    kind, reason = detect_kind(tiny_reranker)
    assert kind == "reranker" and "BertForSequenceClassification" in reason


def test_a_model_of_neither_kind_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    with pytest.raises(CandidateError, match="neither a reranker nor an embedder"):
        resolve(tmp_path)


def test_missing_empty_and_file_candidates_say_what_to_do(tmp_path):
    with pytest.raises(CandidateError, match="does not exist"):
        resolve(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CandidateError, match="is empty"):
        resolve(empty)
    file = tmp_path / "model.onnx"
    file.write_bytes(b"x")
    with pytest.raises(CandidateError, match="is a file"):
        resolve(file)


def test_hub_id_offline_fails_with_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CandidateError, match="Hugging Face Hub .*local model directory"):
        resolve("sentence-transformers/all-MiniLM-L6-v2")


def test_forced_kind_is_reported_against_the_files(shared_reranker):
    candidate = resolve(shared_reranker, kind="embedder")
    assert candidate.kind == "embedder" and "files suggest reranker" in candidate.kind_reason


def test_content_hash_follows_the_files_not_the_readme(tmp_path, tiny_reranker):
    copy = tmp_path / "m"
    shutil.copytree(tiny_reranker, copy)
    before = hash_dir(copy)
    (copy / "README.md").write_text("notes")
    assert hash_dir(copy) == before
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("32", "33", 1))
    assert hash_dir(copy) != before


def test_a_classifier_with_more_than_one_label_is_refused_as_a_reranker(tmp_path, tiny_reranker):
    """A 3-label classifier was gated as a reranker on label 0's logit (and passed). Now one line, before any work;
    the gate exits 4 with it."""
    from tests.test_plugin import run_gate

    three = tmp_path / "nli"
    shutil.copytree(tiny_reranker, three)
    config = json.loads((three / "config.json").read_text())
    config["id2label"] = {"0": "entailment", "1": "neutral", "2": "contradiction"}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (three / "config.json").write_text(json.dumps(config))
    with pytest.raises(CandidateError, match="a sequence classifier with 3 labels .entailment, neutral, contradiction"):
        resolve(str(three))
    assert resolve(str(tiny_reranker)).kind == "reranker"  # one label: a reranker
    out = run_gate("-q", "--candidate", str(three), "--variants", "torch-fp32", "--gate-report", str(tmp_path / "r"),
                   "--gate-cache", str(tmp_path / "cache"))
    assert out.returncode == 4, out.stdout[-2000:]
    lines = [line for line in (out.stdout + out.stderr).splitlines() if "3 labels" in line]
    assert len(lines) == 1 and "Traceback" not in out.stdout + out.stderr
