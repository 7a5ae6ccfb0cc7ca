import pytest

from quantgate.config import DEFAULTS, ThresholdsError, load_thresholds
from tests.conftest import ROOT


def test_project_thresholds_load_with_the_brief_defaults():
    t = load_thresholds(ROOT / "thresholds.toml")
    assert t.quality["reranking_map_max_loss"] == 0.01
    assert t.quality["retrieval_ndcg10_max_loss"] == 0.0155
    assert len(t.sha256) == 64


def test_no_file_means_built_in_defaults():
    t = load_thresholds(None)
    assert t.agreement_limits("onnx", "reranker") == DEFAULTS["agreement"]["reranker"]


def test_exact_id_beats_glob_and_glob_beats_default(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text(
        '[agreement.reranker]\nmax_abs_error = 0.01\n'
        '[variants."onnx-*".agreement]\nmax_abs_error = 0.2\n'
        '[variants."onnx-O3".agreement]\nmax_abs_error = 0.05\n'
    )
    t = load_thresholds(f)
    assert t.agreement_limits("onnx", "reranker")["max_abs_error"] == 0.01
    assert t.agreement_limits("onnx-O1", "reranker")["max_abs_error"] == 0.2
    assert t.agreement_limits("onnx-O3", "reranker")["max_abs_error"] == 0.05


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[quality\nrule = 1", r"t.toml: not valid TOML: .*line 1"),
        ("[quality]\nreranking_map_max_los = 0.01\n", r"t.toml:2: quality.reranking_map_max_los: unknown key"),
        ("[quality]\nrule = \"point\"\n", r"t.toml:2: quality.rule: decisions are now pass/fail/inconclusive"),
        ("[decision]\ninconclusive = \"maybe\"\n", r"t.toml:2: decision.inconclusive: must be \"fail\" or \"pass\""),
        ("[decision]\nconfidence = 0.3\n", r"t.toml:2: decision.confidence: must be between 0.5 and 1"),
        ("[agreement.reranker]\n\nmax_abs_error = \"big\"\n",
         r"t.toml:3: agreement.reranker.max_abs_error: must be a number"),
        ("[agreement.reranker]\nkendal = 0.9\n", r"t.toml:2: agreement.reranker.kendal: unknown metric"),
        ("[agreement.classifier]\nmax_abs_error = 0.9\n", r"agreement.classifier: unknown kind"),
        ("[speed]\nhistory_runs = 2.5\n", r"t.toml:2: speed.history_runs: must be int"),
        ("[agreement.embedder]\ncosine_min = -1\n", r"cosine_min: must be a number from 0 to 1, got -1"),
        ("[thresholds]\nx = 1\n", r"t.toml:1: thresholds: unknown section"),
    ],
)
def test_malformed_thresholds_name_file_line_and_key(tmp_path, text, expected):
    f = tmp_path / "t.toml"
    f.write_text(text)
    with pytest.raises(ThresholdsError, match=expected):
        load_thresholds(f)


def test_missing_thresholds_file(tmp_path):
    with pytest.raises(ThresholdsError, match="not found"):
        load_thresholds(tmp_path / "none.toml")


def test_the_precedence_is_applied_in_one_place(tmp_path):
    """Thresholds.chosen: the command line's value over thresholds.toml's over the built-in default, and where the
    value came from (the session asks it for calibration samples and prompts)."""
    path = tmp_path / "thresholds.toml"
    path.write_text('[calibration]\nsamples = 64\n\n[prompts]\nquery = "query: "\n')
    mine, packaged = load_thresholds(path), load_thresholds(None)
    assert mine.chosen(None, "calibration", "samples") == (64, "thresholds.toml [calibration]")
    assert mine.chosen(8, "calibration", "samples") == (8, "the command line")
    assert packaged.chosen(None, "calibration", "samples")[0] == 300  # the built-in default
    assert mine.chosen(None, "prompts") == ({"query": "query: "}, "thresholds.toml [prompts]")
    assert packaged.chosen(None, "prompts") == (None, None)  # nobody says: the model's own prompts
    assert mine.chosen({"query": ""}, "prompts") == ({"query": ""}, "the command line")
