"""Verdict, report and publish: only what the gate passed goes to the hub, bound to its files."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from quantgate import publish
from quantgate.reporting.report import summary_markdown
from tests.conftest import ROOT
from tests.test_plugin import run_gate


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """A real gate run on the embedded embedder: the reference, onnx (passes) and a noisy mutant (fails)."""
    tmp = tmp_path_factory.mktemp("gated")
    thresholds = tmp / "thresholds.toml"
    shutil.copy(ROOT / "thresholds.toml", thresholds)
    out = run_gate("-q", "-k", "not speed", "--variants", "torch-fp32,onnx,noisy", "--gate-mutant", "noisy=noise:0.5",
                   "--gate-cache", str(tmp / "cache"), "--gate-report", str(tmp / "report"),
                   "--gate-thresholds", str(thresholds))
    assert out.returncode == 1, out.stdout[-3000:]  # the mutant fails: that is the gate working
    return tmp, json.loads((tmp / "report" / "verdict.json").read_text()), thresholds


class FakeHub:
    """Stands in for huggingface_hub.HfApi: records what a push would do."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, exist_ok=False):
        self.calls.append(("create_repo", repo_id, exist_ok))

    def create_commit(self, repo_id, operations, create_pr=False, commit_message=""):
        self.calls.append(("create_commit", repo_id, [op.path_in_repo for op in operations], create_pr, commit_message))
        return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1", "pr_url": None})()


def _publish(verdict_path, thresholds, **kwargs):
    lines = []
    code = publish.publish(verdict_path, "org/model", thresholds=thresholds, echo=lines.append, **kwargs)
    return code, lines


def test_verdict_binds_numbers_and_files(gated):
    _, verdict, _ = gated
    assert verdict["complete"] and verdict["candidate"]["kind"] == "embedder"
    onnx = verdict["variants"]["onnx"]
    assert onnx["passed"] and set(onnx["gates"]) == {"build", "agreement", "batch", "quality"}
    assert onnx["gates"]["agreement"]["results"][0]["metrics"]["cosine_min"] > 0.99
    assert len(onnx["artifact"]["files"]["onnx/model.onnx"]) == 64
    noisy = verdict["variants"]["noisy"]
    assert not noisy["passed"] and any("agreement" in f for f in noisy["failures"])


def test_summary_recommends_and_explains(gated):
    tmp, verdict, _ = gated
    summary = (tmp / "report" / "summary.md").read_text()
    assert summary == summary_markdown(verdict)
    assert "| `noisy` | ❌ fail |" in summary and "## Why variants failed" in summary
    assert "## Recommendation" in summary
    assert "quantgate-mini first stage (candidate order): map " in summary  # the first stage beside the reference
    assert "| `onnx` | ✅ pass | 20/336 |" in summary  # decided at the first look: equal to the reference
    # an embedder is gated on reranking and on retrieval of the same dataset: each loss says which
    tasks = {(l["dataset"], l["task"]) for l in verdict["variants"]["onnx"]["gates"]["quality"]["decisions"]}
    assert {task for _, task in tasks} == {"reranking", "retrieval"}
    assert all(f"{dataset} {task}: " in summary for dataset, task in tasks)


def test_dry_run_lists_exactly_the_passing_variants(gated):
    tmp, _, thresholds = gated
    code, lines = _publish(tmp / "report" / "verdict.json", thresholds, dry_run=True)
    assert code == 0 and any(line.startswith("publishing torch-fp32, onnx to org/model") for line in lines), lines
    assert "  + onnx/model.onnx" in lines and "  + README.md" in lines and "  + quantgate/verdict.json" in lines
    assert [line for line in lines if "noisy" in line] == ["not selected: noisy (fail)"]


def test_only_decided_passes_are_published_whatever_the_policy(gated, tmp_path):
    """An inconclusive variant (its test may have passed under inconclusive = "pass") is never pushed:
    left out of the default selection, refused when named."""
    src, verdict, thresholds = gated
    verdict = json.loads(json.dumps(verdict))
    verdict["variants"]["onnx"]["gates"]["quality"]["decision"] = "inconclusive"
    verdict["variants"]["onnx"].update(decision="inconclusive", passed=False)
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(verdict))
    code, lines = _publish(path, thresholds, dry_run=True)
    assert code == 0 and "not selected: onnx (inconclusive)" in lines
    assert any(line.startswith("publishing torch-fp32 to org/model") for line in lines), lines
    code, lines = _publish(path, thresholds, variants=["onnx"], dry_run=True)
    assert code == 1 and any(line.startswith("refused: onnx: inconclusive") for line in lines), lines


def test_a_verdict_of_another_format_is_refused(gated, tmp_path):
    src, verdict, thresholds = gated
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps({**verdict, "format": "quantgate-verdict/3"}))
    code, lines = _publish(path, thresholds, dry_run=True)
    assert code == 1 and lines == [f"refused: {path}: verdict format 'quantgate-verdict/3', this quantgate reads "
                                   "'quantgate-verdict/2', 'quantgate-verdict/1': gate again with this version"]


def _format_1(verdict: dict) -> dict:
    """A verdict as format 1 wrote it: no decisions, each gate and variant passed or not on the point estimate."""
    old = json.loads(json.dumps(verdict))
    for entry in old["variants"].values():
        entry.pop("decision", None)
        for gate in entry.get("gates", {}).values():
            gate.pop("decision", None)
    return {**old, "format": "quantgate-verdict/1"}


def test_a_format_1_verdict_reads_through_its_converter_and_publishes_nothing_undecided(gated, tmp_path):
    """Format 1 judged each loss's point estimate, which decides nothing at format 2's bound: read back, a variant
    with nothing crossed is inconclusive (the reference passes, a crossed limit stays a fail), and publish takes
    none of them: the reference alone."""
    from quantgate.results.verdict import Verdict, check_format

    _, verdict, thresholds = gated
    old = _format_1(verdict)
    read = check_format(old, "old.json")
    assert read["format"] == "quantgate-verdict/2" and read["converted_from"] == "quantgate-verdict/1"
    expected = {vid: "pass" if vid == "torch-fp32" else "fail" if e["decision"] == "fail" else "inconclusive"
                for vid, e in verdict["variants"].items()}
    assert {vid: e["decision"] for vid, e in read["variants"].items()} == expected
    assert "inconclusive" in expected.values()
    assert {v: e["decision"] for v, e in Verdict.from_dict(old).to_dict(True)["variants"].items()} == expected
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(old))
    code, lines = _publish(path, thresholds, dry_run=True)  # the reference alone, as gated
    assert code == 0 and "not selected: onnx (inconclusive)" in lines, lines
    assert [line for line in lines if line.startswith("publishing")] == [
        next(line for line in lines if line.startswith("publishing torch-fp32 to org/model"))], lines


def test_push_makes_one_commit_with_the_card(gated, monkeypatch):
    tmp, _, thresholds = gated
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    hub = FakeHub()
    code, lines = _publish(tmp / "report" / "verdict.json", thresholds, variants=["onnx"], create_pr=True, api=hub)
    assert code == 0
    assert hub.calls[0] == ("create_repo", "org/model", True)
    name, repo, paths, create_pr, message = hub.calls[1]
    assert name == "create_commit" and create_pr and message == "quantgate: publish onnx"
    assert "onnx/model.onnx" in paths and "model.safetensors" not in paths and paths.count("README.md") == 1
    assert not any("hf_secret" in line for line in lines)
    card = publish.plan(json.loads((tmp / "report" / "verdict.json").read_text()), thresholds, ["onnx"]).card
    assert "model-index:" in card and "## quantgate" in card


def test_a_served_endpoint_is_never_published(gated):
    import copy

    _, verdict, thresholds = gated
    served = copy.deepcopy(verdict)
    served["variants"]["onnx"]["artifact"]["spec"]["family"] = "endpoint"  # as --gate-endpoint records it
    chosen = publish.plan(served, thresholds, None)
    assert "onnx" not in chosen.variants and any(n.startswith("not selected: onnx: a served endpoint") for n in
                                                 chosen.notes), chosen.notes
    named = publish.plan(served, thresholds, ["onnx"])
    assert any(r.startswith("onnx: a served endpoint") for r in named.refusals), named.refusals


def test_publish_offline_says_so_in_one_line_and_pushes_nothing(gated, monkeypatch):
    from huggingface_hub.errors import OfflineModeIsEnabled

    tmp, _, thresholds = gated
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")

    class Offline(FakeHub):
        def create_repo(self, repo_id, exist_ok=False):
            raise OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/repos/create: offline mode is enabled")

    hub = Offline()
    code, lines = _publish(tmp / "report" / "verdict.json", thresholds, variants=["onnx"], api=hub)
    assert code == 1 and hub.calls == []
    assert lines[-1].startswith("not published: OfflineModeIsEnabled (HF_HUB_OFFLINE is set: nothing was pushed"), lines
    assert not any("Traceback" in line or "hf_secret" in line for line in lines)


@pytest.mark.parametrize(
    "change, variants, reason",
    [
        ("none", ["noisy"], "noisy: failed the gate"),
        ("none", ["openvino"], "openvino: not gated (absent from the verdict)"),
        ("thresholds", None, "gated against other thresholds"),
        ("incomplete", None, "did not finish"),
        ("no-quality", ["onnx"], "onnx: not gated by quality"),
        ("tamper", ["onnx"], "onnx: artifact file onnx/model.onnx changed since it was gated"),
        ("collide", ["torch-fp32", "fp16-copy"],
         "fp16-copy: model.safetensors would overwrite another variant's weights"),
    ],
)
def test_every_refusal_path(gated, tmp_path, change, variants, reason):
    src, verdict, thresholds = gated
    verdict = json.loads(json.dumps(verdict))
    thresholds_copy = tmp_path / "thresholds.toml"
    shutil.copy(thresholds, thresholds_copy)
    if change == "thresholds":
        thresholds_copy.write_text(thresholds_copy.read_text() + "\n# edited\n")
    if change == "incomplete":
        verdict["complete"] = False
    if change == "no-quality":
        del verdict["variants"]["onnx"]["gates"]["quality"]
    if change == "collide":
        other = tmp_path / "other"
        shutil.copytree(verdict["variants"]["torch-fp32"]["artifact"]["path"], other)
        (other / "model.safetensors").write_bytes(b"different weights")
        copy = json.loads(json.dumps(verdict["variants"]["torch-fp32"]))
        copy["artifact"]["path"] = str(other)
        copy["artifact"]["files"]["model.safetensors"] = publish.file_sha256(other / "model.safetensors")
        verdict["variants"]["fp16-copy"] = copy
    if change == "tamper":
        artifact = tmp_path / "artifact"
        shutil.copytree(verdict["variants"]["onnx"]["artifact"]["path"], artifact)
        with open(artifact / "onnx" / "model.onnx", "ab") as fh:
            fh.write(b"\0")
        verdict["variants"]["onnx"]["artifact"]["path"] = str(artifact)
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(verdict))
    hub = FakeHub()
    code, lines = _publish(path, thresholds_copy, variants=variants, api=hub)
    assert code == 1 and hub.calls == []
    assert any(reason in line for line in lines), lines
    assert all(line.startswith("refused: ") for line in lines)


def test_a_written_verdict_reads_back_typed(gated):
    """Verdict.from_dict checks the format and gives back the recorded variants: their decisions recompute
    the same."""
    from quantgate.results.verdict import Verdict, VerdictFormatError

    _, verdict, _ = gated
    again = Verdict.from_dict(verdict).to_dict(verdict["complete"])
    assert {v: e["decision"] for v, e in again["variants"].items()} == \
        {v: e["decision"] for v, e in verdict["variants"].items()}
    with pytest.raises(VerdictFormatError, match="quantgate-verdict/0"):
        Verdict.from_dict({**verdict, "format": "quantgate-verdict/0"})


def test_the_own_repository_flow_publishes_what_passed(gated, tmp_path):
    """README "From your model's own repository", in a folder with no thresholds.toml: `quantgate gate`, then
    `quantgate publish --dry-run`, selects what passed; the gate read the packaged limits and publish checks those."""
    tmp, _, _ = gated
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    gate = subprocess.run([sys.executable, "-m", "quantgate.cli", "gate", "-q", "-p", "no:cacheprovider", "-k",
                           "not speed", "--variants", "torch-fp32,onnx", "--gate-embedding-formats", "none",
                           "--gate-cache", str(tmp / "cache")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert gate.returncode == 0, gate.stdout[-3000:]
    assert not (tmp_path / "thresholds.toml").exists()
    out = subprocess.run([sys.executable, "-m", "quantgate.cli", "publish", "--repo-id", "org/model", "--dry-run"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "onnx" in out.stdout and "gate again" not in out.stdout + out.stderr
