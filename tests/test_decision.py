"""Three-valued decisions: the rule on constructed per-query values, the sequential boundaries, the
sequential stop and the inconclusive policy on real gate runs, low-precision scoring hygiene."""

import json
import math

import numpy as np
import pytest

from quantgate.decisions import decision
from quantgate.evaluation.agreement import ties
from quantgate.evaluation.scoring import Scores
from tests.conftest import ROOT
from tests.test_plugin import run_gate

RNG = np.random.default_rng(0)
REFERENCE = RNG.uniform(0.3, 1.0, 200)  # per-query AP of a reference on 200 queries


def test_clear_pass_clear_fail_and_inconclusive():
    c = decision.critical(1.645, len(REFERENCE))
    same = decision.decide(REFERENCE, REFERENCE, 0.01, c)
    assert same[0] == "pass" and same[1] == 0.0 and same[2] <= 0.0 <= same[3] < 0.01
    # every query loses 10% of its value: the loss is 10%, far above a 1% limit
    worse = decision.decide(REFERENCE, REFERENCE * 0.9, 0.01, c)
    assert worse[0] == "fail" and worse[1] == pytest.approx(0.1) and worse[2] > 0.01
    # a loss of 1.5% with a per-query spread far wider than that: neither
    noise = RNG.normal(0, 0.2, len(REFERENCE))
    noisy = REFERENCE * 0.985 + (noise - noise.mean())
    undecided, loss, low, high = decision.decide(REFERENCE, noisy, 0.01, c)
    assert undecided == "inconclusive" and loss == pytest.approx(0.015) and low < 0.01 < high
    assert decision.needed_queries(REFERENCE, noisy, 0.01, c) > 10 * len(REFERENCE)


def test_the_interval_and_the_decision_never_disagree():
    """Fieller's interval at the look's critical value contains exactly the limits the test cannot reject."""
    variant = np.clip(REFERENCE - RNG.normal(0.01, 0.1, len(REFERENCE)), 0, 1)
    c = decision.critical(2.0, len(REFERENCE))
    _, loss, low, high = decision.decide(REFERENCE, variant, 0.0, c)
    assert low < loss < high
    for limit in np.linspace(low - 0.05, high + 0.05, 41):
        verdict = decision.decide(REFERENCE, variant, float(limit), c)[0]
        expected = "pass" if limit > high else "fail" if limit < low else "inconclusive"
        if min(abs(limit - low), abs(limit - high)) > 1e-9:
            assert verdict == expected, (limit, low, high)


def test_under_min_queries_only_an_exact_copy_is_decided():
    """12 queries cannot estimate the spread of rare, large per-query changes: a changed variant stays
    undecided however clear its t looks; one equal to the reference on every query passes."""
    c = decision.critical(1.645, 12)
    assert decision.decide(REFERENCE[:12], REFERENCE[:12] * 0.9, 0.01, c)[0] == "fail"
    assert decision.decide(REFERENCE[:12], REFERENCE[:12] * 0.9, 0.01, c, min_queries=20)[0] == "inconclusive"
    assert decision.decide(REFERENCE[:12], REFERENCE[:12], 0.01, c, min_queries=20)[0] == "pass"
    # its message says why: the bounds clear the limit, the query count is what is missing
    better = decision.evaluate("d", "reranking", "map", REFERENCE[:12], REFERENCE[:12] + np.linspace(0, 0.05, 12), 0.01,
                               decision.Sequence(12, 20, 0.03), 0, min_queries=20)
    assert better.decision == "inconclusive" and better.high < better.limit
    assert "the bounds clear the limit, but on 12 queries only a variant equal to the reference" in better.describe()
    assert "interval contains the limit" not in better.describe() and "needs about 20 queries" in better.describe()


def test_too_few_queries_decide_nothing():
    assert decision.decide(REFERENCE[:1], REFERENCE[:1], 0.01, math.inf)[0] == "inconclusive"
    assert decision.needed_queries(REFERENCE, REFERENCE * (1 - 0.01), 0.01, 1.7) is None  # exactly on the limit


def test_schedule_doubles_and_ends_with_all_queries():
    assert decision.schedule(300, 20) == [20, 40, 80, 160, 300]
    assert decision.schedule(43, 20) == [20, 43]  # 40 is too close to 43 to be worth a look
    assert decision.schedule(12, 20) == [12]


@pytest.mark.parametrize("total", [43, 300, 1000])
def test_the_looks_keep_each_error_rate_at_alpha(total):
    """Brownian motion at the looks' information fractions (seed 0, 100,000 paths): the chance of ever
    crossing the upper boundary before the lower one is alpha (5%), with the looks taken."""
    sequence = decision.Sequence(total, 20, 0.05)
    fractions = np.array(sequence.looks) / total
    rng = np.random.default_rng(0)
    steps = rng.standard_normal((100_000, len(fractions))) * np.sqrt(np.diff(np.r_[0, fractions]))
    z = np.cumsum(steps, axis=1) / np.sqrt(fractions)
    up, down = z >= np.array(sequence.z), z <= -np.array(sequence.z)
    first_up = np.where(up.any(1), up.argmax(1), len(fractions))
    first_down = np.where(down.any(1), down.argmax(1), len(fractions))
    rate = np.mean(first_up < first_down)
    assert rate == pytest.approx(0.05, abs=0.003)
    assert sequence.z[-1] < 1.645 * 1.1  # O'Brien-Fleming: the last look costs little power


def test_ties_and_saturation_are_counted():
    keys = [("a", "1"), ("a", "2"), ("a", "3"), ("b", "4"), ("b", "5")]
    counts = ties(Scores("d", keys, np.array([1.0, 1.0, 0.2, 0.5, 0.4])), "reranker")
    assert counts == {"tied_pairs": 2.0, "saturated_pairs": 2.0}
    assert "saturated_pairs" not in ties(Scores("d", keys, np.array([3.0, 1.0, -2.0, 0.5, 0.4])), "reranker")


def test_the_activation_runs_on_fp32_logits():
    """sentence-transformers applies the cross-encoder's sigmoid in the model's dtype: in fp16 it
    saturates to 1.0 and ties distinct logits (sentence-transformers #3894); the gate upcasts first."""
    import torch

    from quantgate.core.candidate import Fp32Activation

    logits = torch.tensor([8.0, 9.0, 11.0], dtype=torch.float16)
    half = torch.nn.Sigmoid()(logits)
    assert half.unique().numel() < 3  # the bug: ties in half precision
    upcast = Fp32Activation(torch.nn.Sigmoid())(logits)
    assert upcast.dtype == torch.float32 and upcast.unique().numel() == 3 and float(upcast.max()) < 1.0


def test_a_half_precision_reranker_is_scored_through_the_fp32_activation(tiny_reranker, tmp_path):
    from quantgate.core.candidate import Fp32Activation
    from quantgate.session.core import GateSession, GateSettings

    gate = GateSession(GateSettings(candidate=str(tiny_reranker), cache_dir=str(tmp_path), device="cpu",
                                    thresholds=str(ROOT / "thresholds.toml"), variants=("torch-fp16",)))
    model = gate.factory.load(gate.context.registry.variants["torch-fp16"])
    assert next(model.parameters()).dtype.is_floating_point and isinstance(model.activation_fn, Fp32Activation)
    saved = json.loads((gate.factory.artifact(gate.context.registry.variants["torch-fp16"]).path /
                        "config.json").read_text())
    assert "Fp32Activation" not in json.dumps(saved)  # the wrapper is for scoring only, never saved


def _thresholds(tmp_path, text: str):
    path = tmp_path / "thresholds.toml"
    path.write_text((ROOT / "thresholds.toml").read_text() + text)
    return path


def test_a_variant_stops_once_decided(tmp_path):
    """Looks at 20, 40, 80, 160 and all 336 queries of the embedded set: onnx equals the reference on every query and
    stops before the last look; its verdict says how many queries it used."""
    (tmp_path / "thresholds.toml").write_text(_thresholds(tmp_path, "").read_text())
    out = run_gate("-q", "-k", "not speed", "--variants", "torch-fp32,onnx", "--gate-cache", str(tmp_path / "cache"),
                   "--gate-report", str(tmp_path / "report"), "--gate-thresholds", str(tmp_path / "thresholds.toml"))
    assert out.returncode == 0, out.stdout[-3000:]
    onnx = json.loads((tmp_path / "report" / "verdict.json").read_text())["variants"]["onnx"]
    usage = onnx["gates"]["quality"]["usage"][0]
    assert onnx["decision"] == "pass" and usage["queries"] < usage["available"] == 336, usage
    assert usage["stopped"] == f"decided at {usage['queries']} queries"
    decisions = onnx["gates"]["quality"]["decisions"]
    assert {d["queries"] for d in decisions} == {usage["queries"]} and {d["looks"] for d in decisions} == {5}


@pytest.mark.parametrize("policy", ["fail", "pass"])
def test_the_inconclusive_policy(tmp_path, policy):
    """A limit of exactly 0 against a variant whose per-query values equal the reference's: the loss sits on
    the limit, so no data decide it. The policy picks the pytest outcome; the verdict stays inconclusive."""
    thresholds = _thresholds(tmp_path, '\n[variants."onnx".quality]\nreranking_map_max_loss = 0.0\n')
    thresholds.write_text(thresholds.read_text().replace('inconclusive = "fail"', f'inconclusive = "{policy}"'))
    out = run_gate("-q", "-k", "quality", "--variants", "torch-fp32,onnx", "--gate-cache", str(tmp_path / "cache"),
                   "--gate-report", str(tmp_path / "report"), "--gate-thresholds", str(thresholds))
    assert out.returncode == (1 if policy == "fail" else 0), out.stdout[-3000:]
    assert "INCONCLUSIVE" in out.stdout and "no number of queries would decide it" in out.stdout
    onnx = json.loads((tmp_path / "report" / "verdict.json").read_text())["variants"]["onnx"]
    assert onnx["decision"] == "inconclusive" and not onnx["passed"]
