"""A gate run killed with SIGKILL keeps every variant it finished, and the next run resumes from them."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from quantgate.results.verdict import Verdict
from tests.conftest import ROOT
from tests.test_plugin import run_gate

pytestmark = pytest.mark.slow  # gate runs of minutes: CI's fresh-machine part leaves them to the full part

VARIANTS = "torch-fp32,onnx,openvino,slow"
SLOW = "slow=sleep:0.1"  # an unchanged model that sleeps 0.1 s per call: the run is still busy when killed (its
# batch-invariance and batch-1 gates make ~130 calls, 13 s; the test kills within 0.2 s of the third variant)


def _args(tmp_path, *extra: str, variants: str = VARIANTS) -> list[str]:
    thresholds = tmp_path / "thresholds.toml"  # int8 is not gated here; inconclusive quality would pass anyway
    thresholds.write_text((ROOT / "thresholds.toml").read_text().replace('inconclusive = "fail"',
                                                                         'inconclusive = "pass"'))
    return [sys.executable, "-m", "pytest", "gates/", "-p", "no:cacheprovider", "-q", "--variants", variants,
            "--gate-mutant", SLOW, "--gate-cache", str(tmp_path / "cache"), "--gate-report", str(tmp_path / "report"),
            "--gate-thresholds", str(thresholds), "--gate-speed-rounds", "2", "--gate-latency-inputs", "20",
            "--benchmark-storage", f"file://{tmp_path / 'benchmarks'}",
            # what is kept and resumed is the same at 40 queries as at the embedded set's 336
            "--gate-max-queries", "40", *extra]


def _finished(path) -> list[str]:
    try:
        return json.loads(path.read_text()).get("finished", [])
    except (OSError, ValueError):
        return []


def test_a_killed_run_keeps_its_finished_variants_and_the_rerun_resumes(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    verdict_path = tmp_path / "report" / "verdict.json"
    proc = subprocess.Popen(_args(tmp_path), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 900
    while len(_finished(verdict_path)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.communicate()[0][-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    killed = json.loads(verdict_path.read_text())
    Verdict.from_dict(killed, verdict_path)  # readable, this format
    assert killed["complete"] is False
    finished = killed["finished"]
    assert finished[:3] == ["torch-fp32", "onnx", "openvino"] and "slow" not in finished
    for vid in finished:
        entry = killed["variants"][vid]
        assert entry["decision"] == "pass" and entry["passed"] is False  # an incomplete run passes nothing
        assert entry["memory"]["peak_rss_mb"] > 0 and entry["resume_key"]
    assert "has not finished" in (tmp_path / "report" / "summary.md").read_text()

    rerun = subprocess.run(_args(tmp_path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-3000:]
    final = json.loads(verdict_path.read_text())
    assert final["complete"] is True and final["resumed"] == finished
    assert set(final["variants"]) == {"torch-fp32", "onnx", "openvino", "slow"}
    for vid in finished:  # taken from the saved verdict, not scored, built or timed again
        assert f"{vid}: resumed from the saved verdict" in out
        assert f"scoring {vid} " not in out and f"building {vid}" not in out
        assert final["variants"][vid]["gates"] == killed["variants"][vid]["gates"]
    assert "scoring slow " in out and final["variants"]["slow"]["gates"]["speed-b32"]["speedup_vs_reference"]

    # the killed run's incomplete verdict back in place (a complete one is never resumed from): with
    # --gate-no-resume nothing is taken from it; two of its variants, their speed aside, are enough to see that
    verdict_path.write_text(json.dumps(killed))
    fresh = subprocess.run(_args(tmp_path, "--gate-no-resume", "-k", "not speed", variants="torch-fp32,onnx"),
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert fresh.returncode == 0 and "resumed from the saved verdict" not in fresh.stdout
    # its gates ran again, not taken from the verdict: the scores scored again or read from the kept scores of the
    # same artifact on this machine (quantgate.session.scores), which the run names
    assert "scoring onnx " in fresh.stdout or "scores of onnx on" in fresh.stdout
    assert "resumed" not in json.loads(verdict_path.read_text())


def test_the_memory_guard_skips_what_cannot_fit_with_the_reason(tmp_path):
    """A limit below what the process already holds: every variant is skipped with the reason, none is run."""
    out = run_gate("-q", "-rs", "--variants", "torch-fp32,onnx", "--gate-memory-limit", "0.2", "--gate-cache",
                   str(tmp_path / "cache"), "--gate-report", str(tmp_path / "report"), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "onnx skipped by the memory guard: its build and load needs about" in out.stdout
    assert "--gate-memory-limit 0.20 GB leaves 0.00 GB" in out.stdout
    assert not list((tmp_path / "cache").glob("onnx-*"))  # nothing was built


def test_guard_estimates_and_limits():
    from quantgate.core import memory
    from quantgate.variants.registry import VARIANTS, backend_of

    weights = 400 * memory.MB
    estimate = backend_of(VARIANTS["onnx-O2"]).memory_estimate(VARIANTS["onnx-O2"], weights)
    assert estimate.needed(cached=False) > estimate.needed(cached=True) == estimate.load
    held = memory.rss()
    assert memory.guard("onnx-O2", estimate, cached=False, limit=held + estimate.build + memory.MB) is None
    why = memory.guard("onnx-O2", estimate, cached=False, limit=held + estimate.build // 2)
    assert why.startswith("onnx-O2 skipped by the memory guard") and "run it on a larger machine" in why
    assert memory.bound(weights) == 2 * memory.GB + 4 * weights


def test_altered_or_corrupt_cached_scores_are_computed_again_with_one_line(tmp_path):
    """Cached reference scores carry their sha256: an altered file (which failed a correct onnx with max abs error
    1.998) or a corrupt one (BadZipFile tracebacks in every test, and a complete verdict) is scored again, and the
    run says so once."""
    import numpy as np

    from quantgate.evaluation.scoring import Scores, cached_scores, save_scores

    path = tmp_path / "scores.npz"
    scores = Scores("d", [("q1", "a"), ("q1", "b")], np.array([0.25, 0.75]), seconds=1.0)
    save_scores(scores, path)
    intact, why = cached_scores(path)
    assert why is None and intact.keys == scores.keys and list(intact.scores) == [0.25, 0.75]
    with np.load(path) as data:
        arrays = dict(data)
    arrays["scores"] = np.array([0.25, -0.75])  # altered after it was written, its sha256 kept
    np.savez(path, **arrays)
    assert cached_scores(path) == (None, "its arrays do not match their sha256")
    path.write_bytes(b"PK\x03\x04 not a zip")
    assert cached_scores(path)[0] is None and "unreadable" in cached_scores(path)[1]
    assert cached_scores(tmp_path / "absent.npz") == (None, None)

    report, cache = tmp_path / "report", tmp_path / "cache"
    args = ("-q", "-k", "agreement", "--variants", "torch-fp32,onnx", "--gate-cache", str(cache),
            "--gate-report", str(report))
    assert run_gate(*args).returncode == 0
    for file in (cache / "scores").glob("torch-fp32-*.npz"):
        file.write_bytes(b"corrupt")
    again = run_gate(*args, "--gate-no-resume")
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("computing them again") == 1 and "BadZipFile" not in again.stdout
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["complete"] and verdict["variants"]["onnx"]["decision"] == "pass"


@pytest.mark.parametrize("change", [{"embedding_formats": ("float32",)}, {"prompts": (("query", "query: "),)},
                                    {"max_queries": 40}, {"latency_inputs": 10}])
def test_a_saved_variant_is_resumed_only_under_the_settings_it_was_judged_with(tmp_path, change):
    """The resume key holds the run's judged settings (quantgate.results.judged): stored formats and prompts too, so a
    variant finished under other ones is computed again; the verdict records the record merge compares."""
    from quantgate.results import resume
    from quantgate.session.core import GateSession, GateSettings

    def context(**kwargs):
        gate = GateSession(GateSettings(cache_dir=str(tmp_path / "cache"), device="cpu",
                                        thresholds=str(ROOT / "thresholds.toml"), **kwargs))
        return gate.context

    plain, changed = context(), context(**change)
    assert plain.verdict_header()["judged"] == plain.judged.to_dict()
    assert plain.judged.differences(changed.judged), change
    assert resume.inputs_key(plain) != resume.inputs_key(changed)
    assert resume.inputs_key(plain) == resume.inputs_key(context())
