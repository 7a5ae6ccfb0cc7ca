"""Batch and padding invariance (gates/test_batch_invariance.py) and what a crashing variant leaves behind, on the
embedded embedder: the reference is invariant, a padding-dependent mutant fails the check, a variant that crashes
while scoring is a row of the verdict with its root cause, its traceback in gate.log, never in pytest's output."""

from __future__ import annotations

import json

import pytest

from tests.test_plugin import run_gate

pytestmark = pytest.mark.slow  # gate runs of minutes: CI's fresh-machine part leaves them to the full part


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("invariance")
    out = run_gate("-q", "--variants", "torch-fp32,pad,crash", "--gate-mutant", "pad=padding:0.5",
                   "--gate-mutant", "crash=crash:1", "--gate-cache", str(tmp / "cache"), "--gate-report",
                   str(tmp / "report"), "-k", "builds or batch")
    return out, json.loads((tmp / "report" / "verdict.json").read_text()), tmp / "report"


def test_the_reference_scores_a_pair_the_same_alone_and_in_padded_batches(run):
    _, verdict, _ = run
    batch = verdict["variants"]["torch-fp32"]["gates"]["batch"]
    assert batch["passed"] and batch["max_abs_error"] < 1e-4 and not batch["depends_on_batch"]
    assert set(batch["by_composition"]) == {"beside the longest", "one mixed batch", "reversed, batches of 2"}


def test_a_padding_dependent_variant_fails(run):
    out, verdict, report = run
    batch = verdict["variants"]["pad"]["gates"]["batch"]
    assert not batch["passed"] and batch["max_abs_error"] > batch["limits"]["batch_max_abs_error"]
    assert verdict["variants"]["pad"]["decision"] == "fail"
    assert "pad: its scores depend on the batch" in out.stdout
    assert "Scores that depend on the batch: `pad`" in (report / "summary.md").read_text()


def test_a_variant_that_crashes_is_a_row_with_its_root_cause(run):
    out, verdict, report = run
    assert verdict["complete"] and verdict["variants"]["crash"]["decision"] == "fail"
    failures = verdict["variants"]["crash"]["failures"]
    assert any("crashed: RuntimeError: injected crash while scoring" in f for f in failures), failures
    assert "Traceback (most recent call last)" not in out.stdout
    assert "crash: build crashed: RuntimeError: injected crash" in out.stdout
    log = (report / "gate.log").read_text()
    assert "Traceback (most recent call last)" in log and "_crashing" in log
    assert "`crash` | ❌ fail" in (report / "summary.md").read_text()
