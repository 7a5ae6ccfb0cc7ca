"""The quality gate: mteb's numbers, relative loss with a bootstrap CI, and it is not blind."""

import numpy as np
import pytest

from quantgate import quality
from quantgate.registry import VARIANTS
from tests.conftest import ROOT
from tests.test_agreement import _session


@pytest.fixture(scope="module")
def reranker_gate(shared_reranker, scifact, tmp_path_factory):
    return _session(tmp_path_factory.mktemp("cache"), shared_reranker, [scifact], max_queries=20, top_k=10)


@pytest.fixture(scope="module")
def embedder_gate(tmp_path_factory):
    return _session(tmp_path_factory.mktemp("cache"))  # the shipped set: reranking and full-corpus retrieval


@pytest.mark.parametrize("which", ["reranker_gate", "embedder_gate"])
def test_fp32_equivalent_variants_pass(request, which):
    gate = request.getfixturevalue(which)
    for vid in ("onnx", "openvino"):
        qualities, losses, failures = quality.check_variant(gate, VARIANTS[vid])
        assert failures == [], failures
        assert all(abs(l.loss) < 1e-3 for l in losses)
    tasks = {(q.task, m) for q in qualities for m in q.scores}
    expected = {("reranking", "map"), ("reranking", "ndcg_at_10")}
    if which == "embedder_gate":
        expected |= {("retrieval", "ndcg_at_10")}
    assert tasks == expected


@pytest.mark.parametrize("which", ["reranker_gate", "embedder_gate"])
def test_a_degraded_variant_fails(request, which):
    gate = request.getfixturevalue(which)
    _, losses, failures = quality.check_variant(gate, gate.registry.variants["mutant-noise"])
    assert failures, [l.to_dict() for l in losses]
    assert any("relative loss" in f and "95% CI" in f for f in failures)


def test_numbers_agree_with_running_mteb_directly(reranker_gate):
    import mteb

    gate = reranker_gate
    dataset = gate.datasets[0]
    ours = quality.quality_of(gate, gate.reference, dataset, "reranking")
    groups = gate.scores(gate.reference, dataset).by_query()
    qids = sorted(ours.per_query["map"])
    task = quality.build_task(dataset, qids, {q: groups[q][0] for q in qids})
    model = gate.factory.load(gate.reference)
    direct = mteb.evaluate(model, task, cache=None, show_progress_bar=False, encode_kwargs={"batch_size": 32})
    scores = direct.task_results[0].scores["test"][0]
    assert scores["map_at_1000"] == pytest.approx(ours.scores["map"], abs=1e-4)
    assert scores["ndcg_at_10"] == pytest.approx(ours.scores["ndcg_at_10"], abs=1e-4)
    # the per-query values behind the bootstrap average to mteb's number
    assert np.mean(list(ours.per_query["ndcg_at_10"].values())) == pytest.approx(ours.scores["ndcg_at_10"], abs=1e-4)


def test_bootstrap_interval_and_rules():
    ref = quality.TaskQuality("d", "reranking", {"map": 0.5}, {"map": {f"q{i}": 0.5 for i in range(50)}})
    same = quality.relative_loss(ref, ref, "map", 0.01, "point")
    assert same.loss == same.ci_low == same.ci_high == 0.0 and same.failure() is None
    per_query = {f"q{i}": (0.5 if i % 10 else 0.25) for i in range(50)}  # 5 of 50 queries drop by half
    worse = quality.TaskQuality("d", "reranking", {"map": float(np.mean(list(per_query.values())))}, {"map": per_query})
    loss = quality.relative_loss(ref, worse, "map", 0.06, "point", resamples=1000, seed=0)
    assert loss.loss == pytest.approx(0.05) and loss.ci_low < 0.05 < loss.ci_high
    assert loss.failure() is None  # point 5% < 6%
    strict = quality.relative_loss(ref, worse, "map", 0.06, "strict", resamples=1000, seed=0)
    assert strict.failure() is not None and "CI upper end" in strict.failure()
    again = quality.relative_loss(ref, worse, "map", 0.06, "point", resamples=1000, seed=0)
    assert (again.ci_low, again.ci_high) == (loss.ci_low, loss.ci_high)  # fixed seed


def test_embedder_retrieval_from_the_scoring_pass_equals_mteb_encoding_the_corpus(tmp_path):
    """Embedders encode the corpus once, in the scoring pass; retrieval from those embeddings gives
    mteb's own numbers (mteb encoding the corpus itself through its SentenceTransformer wrapper)."""
    from quantgate.quality import evaluate_model, quality_of
    from quantgate.session import GateSession, GateSettings

    gate = GateSession(GateSettings(cache_dir=str(tmp_path), thresholds=str(ROOT / "thresholds.toml"), device="cpu",
                                    variants=("torch-fp32",)))
    dataset = gate.datasets[0]
    one_pass = quality_of(gate, gate.reference, dataset, "retrieval")
    mteb_own = evaluate_model(dataset, gate.factory.load(gate.reference), None, 32)
    assert one_pass.scores["ndcg_at_10"] == pytest.approx(mteb_own.scores["ndcg_at_10"], abs=1e-4)
    assert one_pass.per_query["ndcg_at_10"].keys() == mteb_own.per_query["ndcg_at_10"].keys()
    assert len(gate.scores(gate.reference, dataset).texts) >= len(dataset.corpus)  # the corpus was in the pass
