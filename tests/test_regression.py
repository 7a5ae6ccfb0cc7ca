"""The regression gate (--gate-baseline): a new model version against the one in production, its quality
history over runs, and publish refusing a candidate that regressed."""

import json
import shutil
import subprocess
import sys

import pytest

from quantgate import publish
from quantgate.baseline.production import BaselineError, check, resolve_baseline
from quantgate.config import ThresholdsError, load_thresholds
from quantgate.decisions.decision import Sequence, evaluate
from quantgate.results import history
from tests.conftest import ROOT, thresholds_file
from tests.test_plugin import run_gate

NOISE = 0.3  # std of the Gaussian noise on every Linear weight, x that weight's std (quantgate's noise mutant)
# 40 queries, looks at 20 and 40, and min_queries 20 in the runs' thresholds (the project's 100 is for a loss near
# the limit; this retrain's is far above it): 400 pairs a run instead of 1,000
QUERIES, TOP_K, MIN_QUERIES = "40", "10", 20


def noisy_copy(source, out, level: float = NOISE, seed: int = 0):
    """The reranker with noise injected into its weights, saved as a model directory: a retrain gone wrong."""
    from sentence_transformers import CrossEncoder

    from quantgate.backends.mutant import add_noise

    model = CrossEncoder(str(source), device="cpu")
    add_noise(model, level, seed)
    model.save(str(out))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_reranker, scifact):
    """Three real gate runs on scifact (40 queries, top 10 candidates), sharing cache, benchmark storage and
    quality history: (a) the shared reranker (a copy, deleted afterwards) against itself as the baseline;
    (b) a noisy retrain against (a)'s verdict.json, no baseline weights left; (c) the same retrain against the
    shared reranker's directory (its scores partly cached by (a))."""
    tmp = tmp_path_factory.mktemp("regression")
    production = shutil.copytree(shared_reranker, tmp / "production")
    retrain = noisy_copy(shared_reranker, tmp / "retrain")
    common = ["-q", "--variants", "torch-fp32", "--gate-data", str(scifact), "--gate-max-queries", QUERIES,
              "--gate-top-k", TOP_K, "--gate-cache", str(tmp / "cache"), "--gate-history", str(tmp / "history"),
              "--gate-speed-rounds", "2", "--gate-latency-inputs", "20", "--benchmark-autosave",
              "--gate-thresholds", str(thresholds_file(tmp / "limits", min_queries=MIN_QUERIES)),
              f"--benchmark-storage=file://{tmp / 'benchmarks'}"]
    out = {}
    for name, candidate, baseline in [("a", production, production), ("b", retrain, tmp / "report-a" / "verdict.json"),
                                      ("c", retrain, shared_reranker)]:
        result = run_gate(*common, "--candidate", str(candidate), "--gate-baseline", str(baseline),
                          "--gate-report", str(tmp / f"report-{name}"))
        verdict = json.loads((tmp / f"report-{name}" / "verdict.json").read_text())
        out[name] = (result, verdict)
        if name == "a":
            shutil.rmtree(production)  # (b) must work from the verdict alone
    return tmp, out


def test_the_reranker_against_itself_passes(runs):
    _, out = runs
    result, verdict = out["a"]
    assert result.returncode == 0, result.stdout[-3000:]
    regression = verdict["regression"]
    assert regression["decision"] == "pass" and verdict["baseline"]["origin"] == "model"
    assert verdict["baseline"]["sha256"] == verdict["candidate"]["sha256"]
    assert {(d["task"], d["metric"]) for d in regression["decisions"]} == {("reranking", "map"),
                                                                          ("reranking", "ndcg_at_10")}
    assert all(d["loss"] == 0 and d["queries"] == 20 for d in regression["decisions"])  # equal on every query: look 1


@pytest.mark.parametrize("run", ["b", "c"])
def test_a_noisy_retrain_fails_against_the_production_model(runs, run):
    tmp, out = runs
    result, verdict = out[run]
    assert result.returncode == 1, result.stdout[-3000:]
    assert "the candidate is worse than the baseline" in result.stdout
    regression = verdict["regression"]
    assert regression["decision"] == "fail", regression["decisions"]
    failed = [d for d in regression["decisions"] if d["decision"] == "fail"]
    assert failed and all(d["low"] > regression["limit"] for d in failed)
    assert verdict["variants"]["torch-fp32"]["decision"] == "pass"  # its own quantization gates knew nothing of it
    code, lines = _publish(tmp / f"report-{run}" / "verdict.json", out[run][1])
    assert code != 0 and any("regressed against the baseline" in line for line in lines), lines


def test_a_verdict_baseline_needs_no_weights(runs):
    tmp, out = runs
    result, verdict = out["b"]
    assert verdict["baseline"]["origin"] == "verdict" and not (tmp / "production").exists()
    assert verdict["baseline"]["sha256"] == out["a"][1]["candidate"]["sha256"]
    assert all(d["queries"] == int(QUERIES) and d["looks"] == 1 for d in verdict["regression"]["decisions"])
    assert "scoring the baseline" not in result.stdout
    # (c) scored the same baseline model, past the 20 queries (a) left in the cache: the same decisions
    assert "baseline scores of scifact from" in out["c"][0].stdout
    assert "scoring the baseline on scifact (20 queries)" in out["c"][0].stdout
    assert [d["decision"] for d in out["c"][1]["regression"]["decisions"]] == \
        [d["decision"] for d in verdict["regression"]["decisions"]]


def test_speed_is_compared_with_the_baselines_history(runs):
    _, out = runs
    gates = out["c"][1]["variants"]["torch-fp32"]["gates"]
    assert {"regression-speed-b1", "regression-speed-b32"} <= set(gates)
    assert gates["regression-speed-b32"]["baseline_runs"] >= 1
    # one autosaved run of the baseline (a): recorded, not decided (one run says nothing of the machine's spread)
    assert gates["regression-speed-b32"]["decided"] is (gates["regression-speed-b32"]["baseline_runs"] >= 2)
    assert gates["regression-speed-b32"]["baseline_sha256"] == out["a"][1]["candidate"]["sha256"]


def test_history_shows_quality_and_speed_over_three_runs(runs):
    tmp, _ = runs
    done = subprocess.run([sys.executable, "-m", "quantgate.cli", "history", "--verdicts", str(tmp / "history"),
                           "--storage", str(tmp / "benchmarks"), "--quality-plot", str(tmp / "quality.png"),
                           "--plot", str(tmp / "speed.png"), "--thresholds", str(tmp / "limits" / "thresholds.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = done.stdout
    assert "quality, 3 kept verdicts" in table
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.startswith("torch-fp32")}
    assert "scifact reranking map" in table and "scifact reranking ndcg_at_10" in table
    map_row = table.split("scifact reranking map")[1].splitlines()[2].split()
    assert map_row[0] == "torch-fp32" and map_row[3] == history.MARK  # run 2 (the retrain) decided worse than run 1
    assert history.MARK not in map_row[4:]  # runs 2 and 3 gate the same retrain
    assert len(rows["torch-fp32"]) >= 3 and "throughput, items/s" in table
    assert "decided regressions against the previous run of the same data: " in table
    assert "speed, pytest-benchmark's storage" in table
    assert (tmp / "quality.png").stat().st_size > 0 and (tmp / "speed.png").stat().st_size > 0


def test_a_baseline_of_another_architecture_compares_fine(runs, shared_reranker, scifact, tiny_reranker):
    """A bare 2-layer BertForSequenceClassification (another size, head format and config) as the baseline of
    the shared reranker: only the kind and the data must match. The reference's scores come from the cache."""
    tmp, _ = runs
    result = run_gate("-q", "-k", "test_regression", "--variants", "torch-fp32", "--candidate", str(shared_reranker),
                      "--gate-baseline", str(tiny_reranker), "--gate-data", str(scifact), "--gate-max-queries",
                      QUERIES, "--gate-top-k", TOP_K, "--gate-cache", str(tmp / "cache"),
                      "--gate-thresholds", str(tmp / "limits" / "thresholds.toml"),
                      "--gate-report", str(tmp / "report-tiny"))
    assert result.returncode == 0, result.stdout[-3000:]
    verdict = json.loads((tmp / "report-tiny" / "verdict.json").read_text())
    decisions = verdict["regression"]["decisions"]
    assert verdict["regression"]["decision"] == "pass" and all(d["high"] < 0 for d in decisions)  # decided better
    assert "reference scores of scifact from" in result.stdout


def test_an_embedder_against_a_reranker_is_refused(shared_reranker, embedder_path, tmp_path):
    with pytest.raises(BaselineError, match="is a reranker .* and the candidate an embedder"):
        resolve_baseline(str(shared_reranker), "embedder")
    result = run_gate("-q", "--gate-baseline", str(shared_reranker), "--gate-report", str(tmp_path / "r"),
                      "--variants", "torch-fp32")
    assert result.returncode == 4, result.stdout[-2000:]
    assert "pass an embedder as the baseline" in result.stdout + result.stderr


def _publish(path, verdict):
    lines = []
    thresholds = verdict["thresholds"]["path"]
    return publish.publish(path, "org/model", thresholds=thresholds, echo=lines.append, dry_run=True), lines


def test_bad_baselines_get_one_clear_error(tmp_path):
    with pytest.raises(BaselineError, match="no such verdict file"):
        check(str(tmp_path / "missing.json"))
    with pytest.raises(BaselineError, match="does not exist; pass an existing model directory or a hub id"):
        check("./nowhere/model")
    (tmp_path / "old.json").write_text(json.dumps({"format": "quantgate-verdict/0"}))
    with pytest.raises(BaselineError, match="verdict format"):
        resolve_baseline(str(tmp_path / "old.json"), "reranker")


def test_regression_limits_from_thresholds(tmp_path):
    path = tmp_path / "thresholds.toml"
    path.write_text("[regression]\nrequire_gain = true\nmin_gain = 0.01\n")
    assert load_thresholds(path).regression_limit == -0.01
    path.write_text("[regression]\nmax_loss = 0.002\n")
    assert load_thresholds(path).regression_limit == 0.002
    path.write_text('[regression]\nrequire_gain = "yes"\n')
    with pytest.raises(ThresholdsError, match="require_gain: must be bool"):
        load_thresholds(path)


def test_require_gain_passes_only_a_decided_gain():
    import numpy as np

    rng = np.random.default_rng(0)
    baseline = rng.uniform(0.2, 0.9, 200)
    better = np.clip(baseline + rng.normal(0.05, 0.02, 200), 0, 1)
    sequence = Sequence(200, 200, 0.03)
    assert evaluate("d", "reranking", "map", baseline, better, -0.02, sequence, 0, 100).decision == "pass"
    assert evaluate("d", "reranking", "map", baseline, baseline, -0.02, sequence, 0, 100).decision == "fail"
    assert evaluate("d", "reranking", "map", baseline, baseline, 0.005, sequence, 0, 100).decision == "pass"


def test_publish_refuses_without_a_decided_regression_pass():
    verdict = {"baseline": {"source": "prod", "sha256": "ab" * 32}}
    assert "did not run" in publish._regression_refusals(verdict)[0]
    verdict["regression"] = {"decision": "inconclusive", "decisions": [
        {"dataset": "d", "task": "reranking", "metric": "map", "decision": "inconclusive", "loss": 0.004}]}
    assert "inconclusive" in publish._regression_refusals(verdict)[0]
    verdict["regression"]["decision"] = "pass"
    assert publish._regression_refusals(verdict) == []
    assert publish._regression_refusals({}) == []
