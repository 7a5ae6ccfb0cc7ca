"""The agreement gate passes fp32-equivalent variants and is not blind to broken ones."""

import numpy as np
import pytest

from quantgate.evaluation.agreement import compare, ranking_agreement
from quantgate.evaluation.data import default_data
from quantgate.evaluation.scoring import ScoreError, Scores, check_finite
from quantgate.session.core import GateSession, GateSettings
from quantgate.variants.registry import VARIANTS, VariantSpec
from tests.conftest import ROOT

FP32_EQUIVALENT = ["onnx", "onnx-O1", "onnx-O2", "onnx-O3", "openvino"]
MUTANTS = {
    "mutant-noise": (("noise", 0.5), ("seed", 0)),
    "mutant-tiny-noise": (("noise", 0.001), ("seed", 0)),
    "mutant-no-activation": (("activation", "identity"),),
}


def _session(cache, candidate=None, data=(), max_queries=None, top_k=None, retrieval=True,
             thresholds=ROOT / "thresholds.toml") -> GateSession:
    gate = GateSession(GateSettings(candidate=str(candidate) if candidate else None, cache_dir=str(cache),
                                    data=tuple(str(d) for d in data), thresholds=str(thresholds),
                                    max_queries=max_queries, top_k=top_k, device="cpu", retrieval=retrieval))
    for name, options in MUTANTS.items():
        gate.context.registry.register(VariantSpec(name, "mutant", "fp32", f"injected regression {options}", options))
    return gate


@pytest.fixture(scope="module")
def reranker_gate(shared_reranker, trec_dl19, tmp_path_factory):
    return _session(tmp_path_factory.mktemp("cache"), shared_reranker, [trec_dl19], max_queries=8, top_k=20)


@pytest.fixture(scope="module")
def embedder_gate(scifact, tmp_path_factory):
    # agreement only: no full-corpus encoding (embedders encode the corpus in the scoring pass when retrieval is on)
    return _session(tmp_path_factory.mktemp("cache"), None, [scifact], max_queries=8, top_k=20, retrieval=False)


@pytest.mark.parametrize("vid", FP32_EQUIVALENT)
@pytest.mark.parametrize("which", ["reranker_gate", "embedder_gate"])
def test_fp32_equivalent_variants_pass_default_limits(request, which, vid):
    results, failures, _ = request.getfixturevalue(which).evaluator.agreement_check(VARIANTS[vid])
    assert failures == [], failures
    assert results[0].metrics["kendall_tau_mean"] > 0.99


@pytest.mark.parametrize("which", ["reranker_gate", "embedder_gate"])
def test_perturbed_weights_fail(request, which):
    gate = request.getfixturevalue(which)
    _, failures, _ = gate.evaluator.agreement_check(gate.context.registry.variants["mutant-noise"])
    assert any("max_abs_error" in f for f in failures) and any("kendall_tau" in f for f in failures), failures


@pytest.mark.parametrize("which", ["reranker_gate", "embedder_gate"])
def test_tiny_noise_below_the_limits_passes(request, which):
    gate = request.getfixturevalue(which)
    _, failures, _ = gate.evaluator.agreement_check(gate.context.registry.variants["mutant-tiny-noise"])
    assert failures == []


def test_dropped_activation_fails_even_though_the_ranking_is_identical(reranker_gate):
    dropped = reranker_gate.context.registry.variants["mutant-no-activation"]
    results, failures, _ = reranker_gate.evaluator.agreement_check(dropped)
    assert results[0].metrics["kendall_tau_mean"] == pytest.approx(1.0)  # sigmoid is monotonic
    assert any(f.startswith("[trec-dl19] max_abs_error") for f in failures)
    assert any("mean_abs_error" in f for f in failures)
    assert results[0].worst and {"query", "passage", "reference", "variant"} <= set(results[0].worst[0])


def _scores(values, qids):
    return Scores("d", [(q, f"{q}-{i}") for i, q in enumerate(qids)], np.asarray(values, dtype=float))


def test_ranking_metrics_on_known_lists():
    ref = _scores([0.9, 0.5, 0.1, 0.8, 0.2, 0.3], ["a", "a", "a", "b", "b", "b"])
    same = ranking_agreement(ref, _scores([0.7, 0.4, 0.0, 0.6, 0.1, 0.2], ["a", "a", "a", "b", "b", "b"]))
    assert same == {"kendall_tau_mean": 1.0, "kendall_tau_worst": 1.0, "top1_agreement": 1.0, "top10_overlap": 1.0}
    flipped = ranking_agreement(ref, _scores([0.1, 0.5, 0.9, 0.8, 0.2, 0.3], ["a", "a", "a", "b", "b", "b"]))
    assert flipped["kendall_tau_worst"] == pytest.approx(-1.0) and flipped["top1_agreement"] == 0.5


def test_nan_scores_are_refused_plainly():
    with pytest.raises(ScoreError, match="1 NaN and 1 inf"):
        check_finite(np.array([0.1, np.nan, np.inf]), "scores")


def test_pairs_must_match_the_reference():
    data = default_data()
    with pytest.raises(ValueError, match="other pairs"):
        compare("x", "reranker", _scores([1, 2], ["a", "a"]), _scores([1], ["a"]), data)


def test_p99_abs_error_ignores_one_outlier_that_max_abs_error_reports():
    """max_abs_error is one pair (it grows with the number scored); p99_abs_error is not; either can be limited."""
    from quantgate.evaluation.agreement import agreement_failures

    data = default_data()
    qids = [f"q{i // 10}" for i in range(1000)]
    reference = np.linspace(0.0, 0.5, 1000)
    moved = reference + 0.01
    moved[500] += 0.9  # one pair near the sigmoid's steep middle jumps
    result = compare("x", "reranker", _scores(reference, qids), _scores(moved, qids), data)
    assert result.metrics["max_abs_error"] == pytest.approx(0.91)
    assert result.metrics["p99_abs_error"] == pytest.approx(0.01)
    assert agreement_failures(result, {"p99_abs_error": 0.05}) == []
    [failure] = agreement_failures(result, {"p99_abs_error": 0.005})
    assert failure.startswith("[quantgate-mini] p99_abs_error = 0.01") and failure.endswith("> limit 0.005")
