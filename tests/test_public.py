"""The public fixtures (gate_variant, gate_reference, gate_data, gate_record) as a team uses them: its own test
files beside the packaged gates, one session and one verdict, ordered by the `gate` marker; and examples/ run
from the installed package outside the checkout. Plugin behaviour through pytester (in-process)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quantgate.config import PACKAGED_THRESHOLDS
from quantgate.publish import plan
from tests.conftest import ROOT

pytest_plugins = ["pytester"]

TEAM_TESTS = '''
import pytest


def test_team_check(gate_variant, gate_reference, gate_data, gate_record):
    queries = list(gate_data.queries().items())[:3]
    pairs = [(text, doc) for qid, text in queries for _, doc in gate_data.candidates(qid)]
    scores, reference = gate_variant.score(pairs), gate_reference.score(pairs)
    assert scores.shape == reference.shape == (len(pairs),)
    assert gate_variant.artifact.files and len(gate_variant.artifact.sha256) == 64
    # a check only openvino fails: the decision must come from it alone
    gate_record("team_limit", float(abs(scores - reference).max()), limit=0.5)
    gate_record("not_openvino", passed=gate_variant.id != "openvino", note="the team refuses openvino")


@pytest.mark.gate(order=0.5)
def test_before_agreement(gate_variant):
    assert gate_variant.kind == "embedder"


def test_outside_any_variant(gate_record):
    gate_record("nothing", 1.0)
'''


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("public-cache")


@pytest.fixture(scope="module", autouse=True)
def libraries_loaded_once(native_libraries):
    """See tests.conftest.native_libraries: pytester's in-process runs need them imported first."""


def _gate(pytester: pytest.Pytester, cache: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("--pyargs", "quantgate.gates", "test_team.py", "--gate-cache", str(cache),
                                        "--gate-report", "report", "--gate-history", "history",
                                        "--benchmark-storage", f"file://{pytester.path / 'bench'}",
                                        "--gate-embedding-formats", "none", *args)


def test_team_tests_run_with_each_variant_after_the_packaged_gates(pytester, cache):
    pytester.makepyfile(test_team=TEAM_TESTS)
    result = _gate(pytester, cache, "--collect-only", "-q", "--variants", "onnx,torch-fp32")
    assert result.ret == 0, result.outlines[-20:]
    items = [line.split("::", 1)[1] for line in result.outlines if "::" in line]
    onnx = [i.split("[")[0] for i in items if i.endswith("[onnx]") or i.endswith("-onnx]")]
    assert onnx == ["test_variant_builds_and_scores", "test_before_agreement", "test_agreement",
                    "test_batch_invariance", "test_quality", "test_speed", "test_speed", "test_regression_speed",
                    "test_regression_speed", "test_team_check"]
    variants = [i[i.index("[") + 1 : -1].split("-", 1)[-1] if i.startswith(("test_speed", "test_regression_speed"))
                else i[i.index("[") + 1 : -1].split("@")[0] for i in items if "[" in i]
    assert list(dict.fromkeys(variants)) == ["torch-fp32", "onnx"]  # the reference first, never interleaved
    assert items[0] == "test_outside_any_variant"  # no variant: before the matrix, as any plain test


def test_a_failed_team_check_fails_the_variant_and_publish_leaves_it(pytester, cache):
    pytester.makepyfile(test_team=TEAM_TESTS)
    result = _gate(pytester, cache, "--variants", "torch-fp32,onnx,openvino", "-k", "not speed and not batch")
    outcomes = result.parseoutcomes()
    verdict = json.loads((pytester.path / "report" / "verdict.json").read_text(),
                         parse_constant=lambda token: pytest.fail(f"verdict.json holds {token}: not strict JSON"))
    assert verdict["complete"], result.outlines[-30:]
    for vid in ("torch-fp32", "onnx", "openvino"):
        gates = verdict["variants"][vid]["gates"]
        assert gates["check:team_limit"]["passed"] and gates["check:team_limit"]["value"] < 1e-3, gates
        assert gates["check:not_openvino"]["passed"] == (vid != "openvino")
        # a team test that passed with a plain assert is a result too: every test of the variant is in its decision
        assert gates["before_agreement"] == {"note": "passed; the test recorded no value", "passed": True,
                                             "failures": []}, gates
    openvino = verdict["variants"]["openvino"]
    assert openvino["decision"] == "fail"
    assert openvino["failures"] == ["check:not_openvino: not_openvino failed: the team refuses openvino"]
    assert verdict["variants"]["onnx"]["failures"] == []
    chosen = plan(verdict, PACKAGED_THRESHOLDS, None).variants
    assert "openvino" not in chosen and "onnx" in chosen
    # pytest's answer matches: the team test failed for openvino only, and the misuse says what to do
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert any("test_team_check[openvino]" in line for line in failed)
    assert not any("test_team_check[onnx]" in line or "test_team_check[torch-fp32]" in line for line in failed)
    errors = [line for line in result.outlines if line.startswith("ERROR")]
    assert len(errors) == 1 and "test_outside_any_variant" in errors[0]  # misused in setup: an error, said once
    assert "gate_record records under a variant" in result.stdout.str()
    assert outcomes["failed"] == 1 and outcomes["errors"] == 1
    summary = (pytester.path / "report" / "summary.md").read_text()
    checks = summary.split("## Your checks")[1].split("\n## ")[0]
    assert "| not_openvino | – | ✅ | ✅ | ❌ |" in checks, checks


@pytest.mark.slow
def test_examples_run_from_the_installed_package_outside_the_checkout(tmp_path, cache):
    """README "Write your own gate": `quantgate gate examples/` in a folder that is not the checkout."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    quantgate = Path(sys.executable).parent / "quantgate"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "P99_LIMIT_MS": "1000"}
    run = subprocess.run([str(quantgate), "gate", "examples/", "--variants", "torch-fp32,onnx,noisy",
                          "--gate-mutant", "noisy=noise:0.5", "--gate-cache", str(cache), "-k", "not test_speed",
                          "--gate-latency-inputs", "20", "--gate-history", "history", "-p", "no:cacheprovider",
                          "--benchmark-storage", f"file://{tmp_path / 'bench'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]  # noisy fails
    verdict = json.loads((tmp_path / "gate-report" / "verdict.json").read_text())
    assert verdict["complete"]
    for vid in ("torch-fp32", "onnx", "noisy"):
        gates = verdict["variants"][vid]["gates"]
        assert {"check:golden_top1_changed", "check:p99_latency_ms"} <= set(gates), (vid, sorted(gates))
        assert gates["check:p99_latency_ms"]["passed"] and gates["check:p99_latency_ms"]["value"] > 0
    assert verdict["variants"]["onnx"]["gates"]["check:golden_top1_changed"]["value"] == 0
    assert not verdict["variants"]["noisy"]["gates"]["check:golden_top1_changed"]["passed"]
    summary = (tmp_path / "gate-report" / "summary.md").read_text()
    assert "| golden_top1_changed | ≤ 0 |" in summary and "| p99_latency_ms | ≤ 1000 |" in summary
    dry = subprocess.run([str(quantgate), "publish", "--dry-run", "--repo-id", "team/model", "--thresholds",
                          str(PACKAGED_THRESHOLDS)], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert "noisy" not in dry.stdout.replace("not selected: noisy", ""), dry.stdout
    assert "not selected: noisy (fail)" in dry.stdout, dry.stdout


BROKEN_FIXTURE = '''
import json
import pytest


@pytest.fixture(scope="session")
def golden():
    return json.loads(open("golden-missing.json").read())


def test_golden(gate_variant, golden, gate_record):
    gate_record("golden", len(golden))
'''


def test_a_teams_broken_fixture_is_an_error_of_the_run_not_a_decision(pytester, cache):
    """A team's own fixture that raises (a golden file missing) is pytest's ERROR, said once with its root cause; no
    variant is decided against for it, and the verdict is incomplete: nothing passes, nothing kept in history."""
    pytester.makepyfile(test_team=BROKEN_FIXTURE)
    result = _gate(pytester, cache, "--variants", "torch-fp32,onnx", "-k", "not speed and not batch")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    errors = [line for line in result.outlines if line.startswith("ERROR")]
    assert len(errors) == 2 and all("test_golden" in line for line in errors), errors
    out = result.stdout.str()
    said = "your fixture golden (test_team.py:7) raised in setup: FileNotFoundError"
    # pytest's short summary repeats each ERROR's message, cut to the terminal's width (CI's is wider than 80
    # columns): the traceback pointer is counted above it
    body = out.split("short test summary info")[0]
    assert out.count(said) >= 2 and body.count("(traceback: ") == 1, out[-3000:]
    verdict = json.loads((pytester.path / "report" / "verdict.json").read_text())
    assert not verdict["complete"]
    for vid in ("torch-fp32", "onnx"):  # the packaged gates decided; the team's error is not in any variant's row
        entry = verdict["variants"][vid]
        assert "golden" not in json.dumps(entry) and entry["failures"] == [], entry
    assert not list((pytester.path / "history").glob("*.json"))
    assert "the run is incomplete (nothing passes, nothing kept in history)" in out
