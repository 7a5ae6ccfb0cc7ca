"""The pytest plugin end to end: collection, options, one clear error per bad input."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_registry import ALL_IDS, SEED_IDS


def run_gate(*args: str, timeout: int = 1800, path: str = "gates/") -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # no hub here: fail fast instead of retrying
    return subprocess.run([sys.executable, "-m", "pytest", path, "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def collected_ids(out: str) -> list[str]:
    return re.findall(r"test_variant_builds_and_scores\[([^\]]+)\]", out)


def test_collect_lists_every_id_for_the_embedder():
    out = run_gate("--collect-only", "-q")
    assert out.returncode == 0, out.stderr
    assert collected_ids(out.stdout) == ALL_IDS


def test_collect_lists_every_id_for_the_reranker(shared_reranker):
    out = run_gate("--collect-only", "-q", "--candidate", str(shared_reranker))
    assert out.returncode == 0, out.stderr
    assert collected_ids(out.stdout) == ALL_IDS


def test_report_header_says_what_reproduces_the_run(shared_reranker):
    out = run_gate("--collect-only", "--candidate", str(shared_reranker), "--variants", "onnx-qint8-*")
    text = out.stdout
    assert "quantgate: kind reranker" in text and "CrossEncoder" in text
    assert "thresholds" in text and "sha256" in text and "libraries torch 2.13.0" in text
    assert collected_ids(text) == SEED_IDS[8:12]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants", "onx-O2"], "Did you mean 'onnx-O2'"),
        (["--candidate", "/nonexistent/model"], "does not exist"),
        (["--candidate", "org/model-that-is-not-cached"], "Hugging Face Hub"),
        (["--gate-data", "/nonexistent/data"], "does not exist; pass a BEIR-format folder"),
        (["--gate-thresholds", "pyproject.toml"], "unknown section"),
        (["--gate-artifact", "no-equals-sign"], "expected NAME=PATH"),
        (["--gate-batch-size", "0"], "expected a positive integer"),
    ],
)
def test_bad_input_gets_one_clear_error(args, message):
    out = run_gate("--collect-only", "-q", *args, timeout=120)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_mteb_task_gets_mteb_did_you_mean():
    out = run_gate("--collect-only", "-q", "--gate-tasks", "SciFactt", timeout=300)
    assert out.returncode != 0 and "Did you mean: 'SciFact'" in out.stderr, out.stderr


def test_mteb_task_by_name_offline_says_the_hub_is_unreachable_and_what_to_use(tmp_path):
    out = run_gate("-q", "--variants", "torch-fp32", "--gate-tasks", "SciFact",
                   "--gate-no-retrieval", "--gate-cache", str(tmp_path), "--gate-report", str(tmp_path / "r"),
                   path="gates/test_quality.py", timeout=600)
    assert out.returncode == 1
    assert "mteb task SciFact: cannot load its data from the Hugging Face Hub" in out.stdout
    assert "--gate-data with a local BEIR folder" in out.stdout
