"""The time guard (quantgate.variants.timeguard, quantgate.session.timing): estimates from measured rates, a budget
held with a complete verdict, each skipped variant's reason."""

import dataclasses
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from quantgate.core.results import RunHeader
from quantgate.session.core import GateSession
from quantgate.session.settings import GateSettings
from quantgate.variants import timeguard
from quantgate.variants.timeguard import TimeGuard, measurements
from tests.conftest import ROOT, thresholds_file


def _verdict(cpu: str, reference: float, walls: dict[str, float], cached: bool = False) -> dict:
    """A kept verdict whose reference cost `reference` seconds (wall 1 s plus scores from the cache)."""
    variants = {v: {"wall_seconds": w, "gates": {"build": {"cached": cached}}} for v, w in walls.items()}
    variants["torch-fp32"] = {"wall_seconds": 1.0}
    return {"machine": {"cpu": cpu}, "scoring_seconds": {"torch-fp32@data": reference - 1.0},
            "reference_scores_cached": True, "variants": variants}


def test_estimates_scale_what_was_measured_by_the_reference_work_now():
    runs = [_verdict("cpu-a", 2.0, {"onnx": 8.0, "slowed": 60.0}),
            _verdict("cpu-a", 4.0, {"onnx": 12.0}, cached=True),
            _verdict("cpu-b", 1.0, {"onnx": 100.0})]  # another machine: not used
    history = measurements([RunHeader.from_dict(r) for r in runs], "cpu-a")
    assert history == {("onnx", True): [4.0], ("onnx", False): [3.0], ("slowed", True): [30.0]}
    guard = TimeGuard(None, 0.0, history)
    assert guard.estimate("onnx", cold=True, unit_s=2.0).seconds == pytest.approx(8.0)  # the same work: as measured
    assert guard.estimate("onnx", cold=False, unit_s=4.0).seconds == pytest.approx(12.0)  # cached builds: their own
    assert guard.estimate("slowed", cold=False, unit_s=1.0).seconds == pytest.approx(30.0)  # twice less inference
    unknown = guard.estimate("never-seen", cold=True, unit_s=1.0)
    assert unknown.seconds == pytest.approx(max(timeguard.DEFAULT_MULTIPLES.values()))
    assert "not measured" in unknown.source
    table = guard.estimate("openvino-qint8-ac", cold=True, unit_s=10.0, tuning_s=500.0)  # no history: table + passes
    assert table.seconds == pytest.approx(10.0 * timeguard.DEFAULT_MULTIPLES["openvino-qint8-ac"] + 500.0)
    measured = TimeGuard(None, 0.0, {("openvino-qint8-ac", True): [7.0]}).estimate("openvino-qint8-ac", True, 10.0,
                                                                                   500.0)
    assert measured.seconds == pytest.approx(70.0)  # its own measurement holds its passes already


def test_accuracy_control_estimates_count_its_passes_and_nncf_its_rankings():
    control = {"validation_queries": 20, "validation_candidates": 5, "max_trials": 3, "ranking_queries": 50}
    passes = (3 + timeguard.EXTRA_PASSES) * 20 * 6 / 10.0  # 6 items a query (its candidates and the query)
    assert timeguard.tuning_seconds(control, 10.0, nncf=False, matrices=73, weight_gb=0.41) == pytest.approx(passes)
    one = timeguard.tuning_seconds(control, 10.0, nncf=True, matrices=1, weight_gb=0.41)
    # each group: a compile, and the ranking queries (at most the validation split: 20, not 50) scored
    group = 20 * 6 / 10.0 + timeguard.COMPILE_S + timeguard.COMPILE_S_PER_GB * 0.41
    assert one == pytest.approx(passes + timeguard.RANKINGS * group)  # one group: one compile
    # 73 matrices: 66 groups, ranked coarse to fine for 3 trials: 14 blocks of 5, then the best 3 blocks group by group
    base = timeguard.tuning_seconds(control, 10.0, nncf=True, matrices=73, weight_gb=0.41)
    assert base == pytest.approx(passes + timeguard.RANKINGS * (14 + 5 * 3) * group)
    assert timeguard.tuning_seconds(control, 20.0, nncf=False) == pytest.approx(passes / 2)  # twice the rate


def test_an_earlier_run_of_the_same_candidate_and_data_gives_the_plan_before_any_work():
    header = {"candidate": {"sha256": "c1"}, "data": [{"sha256": "d1"}], "subset": {"max_queries": None},
              "device": "cpu", "threads": 2}
    runs = [{**_verdict("cpu-a", 3.0, {"onnx": 6.0}), **header}, {**_verdict("cpu-a", 5.0, {"onnx": 6.0}), **header},
            {**_verdict("cpu-a", 50.0, {}), **header, "data": [{"sha256": "other"}]},  # other data: another cost
            {**_verdict("cpu-b", 9.0, {}), **header}]  # another machine
    kept = [RunHeader.from_dict(r) for r in runs]
    guard = TimeGuard(None, 0.0, measurements(kept, "cpu-a"), timeguard.units(kept, "cpu-a"))
    key = timeguard.run_key
    assert guard.earlier_unit(key(RunHeader.from_dict(header))) == pytest.approx(4.0)  # the median of 3 and 5
    assert guard.earlier_unit(key(RunHeader.from_dict({**header, "candidate": {"sha256": "c2"}}))) is None


def test_a_variant_that_does_not_fit_is_skipped_with_its_estimate_and_what_to_do():
    guard = TimeGuard(60.0, started=0.0, history={("slow", True): [40.0]})
    estimate = guard.estimate("slow", cold=True, unit_s=1.0)
    assert guard.skip_reason(estimate, now=10.0) is None  # 40 s fit in the 50 s left
    why = guard.skip_reason(estimate, now=30.0)
    assert why.startswith("time guard: slow is estimated at 40 s") and "30 s of the 1.0 min budget are left" in why
    assert "--gate-shard" in why and "--variants" in why
    assert TimeGuard(None, 0.0).skip_reason(estimate, now=1e9) is None  # no budget: nothing skipped


def _run(tmp_path, *extra: str, variants: str = "torch-fp32,onnx,slowed", history: str = "history"
         ) -> tuple[subprocess.CompletedProcess, float]:
    args = [sys.executable, "-m", "pytest", "gates/", "-p", "no:cacheprovider", "-q", "-rs", "--variants",
            variants, "--gate-mutant", "slowed=sleep:0.3", "--gate-cache", str(tmp_path / "cache"),
            "--gate-report", str(tmp_path / "report"), "--gate-history", str(tmp_path / history),
            "--gate-latency-inputs", "20", "--gate-speed-rounds", "2", "--gate-embedding-formats", "none",
            "--benchmark-storage", f"file://{tmp_path / 'bench'}", "--gate-no-resume", *extra]
    started = time.perf_counter()
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    return out, time.perf_counter() - started


@pytest.mark.slow
def test_a_budget_is_held_with_a_complete_verdict(tmp_path):
    """A first run measures a slowed mutant (0.3 s per call); the second, with a budget half its time short, skips it
    from that measurement, before any of its work, and ends within the budget (+10%) with every row accounted for."""
    # The other variants' builds and scores cached first (their run kept in another history, so the first run below
    # still has no earlier run): a first run that built them took longer than the cached second run by more than half
    # the slowed variant's time, and the second run then fitted it in the budget (KeyError 'slowed', seen twice).
    warmup, _ = _run(tmp_path, "-k", "not speed", variants="torch-fp32,onnx", history="warmup-history")
    assert warmup.returncode in (0, 1), warmup.stdout[-3000:]
    first, first_wall = _run(tmp_path)
    assert first.returncode in (0, 1), first.stdout[-3000:]
    assert "plan: once the reference is timed (no earlier run" in first.stdout, first.stdout[-3000:]
    walls = {v: e["wall_seconds"] for v, e in json.loads((tmp_path / "report" / "verdict.json").read_text())[
        "variants"].items()}
    budget_s = first_wall - 0.5 * walls["slowed"]
    second, second_wall = _run(tmp_path, "--gate-time-budget", f"{budget_s / 60:.4f}")
    verdict = json.loads((tmp_path / "report" / "verdict.json").read_text())
    assert verdict["complete"], second.stdout[-3000:]
    # the first run measured this candidate and data: the second has its plan before any work
    assert "plan (from earlier runs of this candidate and data on this machine, before any work): 2 variant(s)" \
        in second.stdout, second.stdout[-3000:]
    assert verdict["skipped"]["slowed"].startswith("time guard: slowed is estimated at"), verdict.get("skipped")
    assert "earlier run(s) on this machine" in verdict["skipped"]["slowed"]
    assert "slowed" not in verdict["variants"] and {"torch-fp32", "onnx"} <= set(verdict["variants"])
    assert verdict["variants"]["onnx"]["time"]["estimated_s"] > 0 and verdict["variants"]["onnx"]["time"]["actual_s"]
    # at 0.3 s a call, measured: slowed 43.5 s of a 60.5 s first run, a 38.7 s budget, the second run 18.5 s
    assert second_wall <= 1.1 * budget_s, (second_wall, budget_s, walls)
    assert "## Time" in (tmp_path / "report" / "summary.md").read_text()


@pytest.mark.parametrize("fixture", ["tiny_reranker", "tiny_embedder"])
def test_the_weight_matrices_counted_from_the_headers_are_the_models_linear_layers(fixture, request):
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from quantgate.core.candidate import matrix_weights

    path = request.getfixturevalue(fixture)
    model = (CrossEncoder if fixture == "tiny_reranker" else SentenceTransformer)(str(path), device="cpu")
    linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert matrix_weights(path) == linear > 0


def test_a_variant_that_builds_its_sources_artifact_is_estimated_with_that_build(tmp_path):
    """openvino-qint8-bf16 runs openvino-qint8's IR: while openvino-qint8 is ahead in the run, its own multiple; once
    openvino-qint8 was skipped, that variant's cold estimate on top (it builds the IR), so it does not fit either."""
    gate = GateSession(GateSettings(cache_dir=str(tmp_path / "cache"), device="cpu"))
    gate.run.verdict.variants["torch-fp32"] = {"wall_seconds": 10.0}
    variants = gate.context.registry.variants
    bf16, source = variants["openvino-qint8-bf16"], variants["openvino-qint8"]
    alone = gate.estimate(bf16)
    assert alone.seconds == pytest.approx(10.0 * gate.time_guard.multiple("openvino-qint8-bf16", True)[0])
    gate.run.verdict.header.setdefault("skipped", {})["openvino-qint8"] = "time guard: ..."
    first = gate.estimate(source)
    both = gate.estimate(bf16)
    assert both.seconds == pytest.approx(alone.seconds + first.seconds) and both.seconds > first.seconds
    assert "plus openvino-qint8's build first" in both.source


def test_the_validation_split_is_cut_to_the_most_queries_that_fit():
    control = {"validation_queries": 100, "validation_candidates": 9, "max_trials": 3, "ranking_queries": 10,
               "min_validation_queries": 40}
    per_query = (3 + timeguard.EXTRA_PASSES) * 10 / 10.0  # 5 s a query at 10 items/s (INC: no ranking)
    assert timeguard.fitted_validation(control, 100, 20.0, 20.0 + 100 * per_query, 10.0, nncf=False) == 100
    assert timeguard.fitted_validation(control, 100, 20.0, 20.0 + 57.5 * per_query, 10.0, nncf=False) == 57
    assert timeguard.fitted_validation(control, 100, 20.0, 20.0 + 40 * per_query, 10.0, nncf=False) == 40
    assert timeguard.fitted_validation(control, 100, 20.0, 20.0 + 39 * per_query, 10.0, nncf=False) is None
    assert timeguard.fitted_validation(control, 30, 0.0, 30 * per_query, 10.0, nncf=False) == 30  # a smaller split
    # passes scaled (a measured estimate below the table's): twice cheaper, twice the queries
    assert timeguard.fitted_validation(control, 100, 20.0, 20.0 + 40 * per_query, 10.0, nncf=False, scale=0.5) == 80
    # NNCF's rankings shrink with the queries too, and the largest n that fits is found whatever they cost
    left = 20.0 + timeguard.tuning_seconds({**control, "validation_queries": 70}, 10.0, True, 73, 0.41)
    assert timeguard.fitted_validation(control, 100, 20.0, left, 10.0, nncf=True, matrices=73, weight_gb=0.41) == 70


def test_a_sample_of_the_validation_split_is_seeded_and_part_of_a_larger_one():
    from quantgate.evaluation.data import EvalSet, validation_sample

    split = EvalSet("validation(x)", ROOT, {}, {}, {"test": {}}, {f"q{i}": [f"d{i}"] for i in range(100)})
    small, large = validation_sample(split, 10), validation_sample(split, 40)
    assert len(small.candidates) == 10 and len(large.candidates) == 40 and small.name == split.name
    assert set(small.candidates) < set(large.candidates) and small == validation_sample(split, 10)
    assert set(small.candidates) != {f"q{i}" for i in range(10)}  # a sample, not the first queries by name


def test_a_tuning_on_a_sample_is_compared_with_the_references_map_on_that_sample():
    from quantgate.evaluation.data import EvalSet
    from quantgate.evaluation.tuning import Tuning

    per_query = {"a": 0.2, "b": 0.4, "c": 0.9}
    split = EvalSet("validation(x)", ROOT, {}, {}, {"test": {}}, {"a": [], "b": [], "c": []})
    whole = Tuning(0.01, 3, 2, split, reference=lambda: (0.5, per_query))
    assert whole.reference_quality() == (0.5, [0.2, 0.4, 0.9])
    sample = Tuning(0.01, 3, 2, dataclasses.replace(split, candidates={"a": [], "c": []}),
                    reference=lambda: (0.5, per_query))
    value, chosen = sample.reference_quality()
    assert value == pytest.approx(0.55) and chosen == [0.2, 0.9]


def test_an_accuracy_controlled_variant_that_does_not_fit_tunes_on_fewer_validation_queries(tmp_path):
    """With a budget its whole validation split does not fit, openvino-qint8-ac is not skipped: it tunes on the
    most queries that fit (its key with them); with less left than the least split takes, it is skipped."""
    from quantgate.evaluation.scoring import Scores

    thresholds = thresholds_file(tmp_path, min_validation_queries=2)  # the embedded data hold 6 validation queries

    def session(budget_min: float) -> GateSession:
        gate = GateSession(GateSettings(cache_dir=str(tmp_path / "cache"), device="cpu", time_budget_min=budget_min,
                                        history_dir=str(tmp_path / "history"),  # no kept verdicts: the table
                                        thresholds=str(thresholds)))
        gate.run.verdict.variants["torch-fp32"] = {"wall_seconds": 1.0}
        gate.run.scores[("torch-fp32", "x")] = Scores("x", [], np.zeros(0), texts=["t"] * 100, seconds=10.0)  # 10/s
        return gate

    gate = session(1e6)
    spec = gate.context.registry.variants["openvino-qint8-ac"]
    queries = len(gate.context.validation.candidates)
    assert queries > gate.context.thresholds.accuracy_control["min_validation_queries"], queries
    whole = gate.estimate(spec)
    key = gate.factory.key(spec)
    tuning_s = gate._tuning_seconds(spec)
    assert gate.time_skip(spec) is None and not gate.run.validation_cuts  # fits: the whole split

    # what is left holds the build's other work and the passes of 3/4 of the split, and half a query more
    n = queries * 3 // 4
    three_quarters, one_more = gate._tuning_seconds(spec, n), gate._tuning_seconds(spec, n + 1)
    assert "plus its validation passes" in whole.source and one_more > three_quarters
    budget_s = whole.seconds - tuning_s + (three_quarters + one_more) / 2
    gate = session(budget_s / 60)
    assert gate.time_skip(spec) is None, gate.run.verdict.header.get("skipped")
    cut = gate.run.validation_cuts["openvino-qint8-ac"]
    assert cut == n, (cut, n, queries)
    assert len(gate.factory.tuning(spec).validation.candidates) == cut and gate.factory.key(spec) != key
    estimate = gate.run.estimates["openvino-qint8-ac"]
    assert estimate.seconds <= budget_s and f"cut from {queries} to {cut} queries" in estimate.source

    gate = session(1 / 60)  # a second: not even the least split fits
    why = gate.time_skip(spec)
    assert why.startswith("time guard: openvino-qint8-ac is estimated at") and "min_validation_queries" in why
    assert not gate.run.validation_cuts
