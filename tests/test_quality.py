"""The quality gate: mteb's numbers, three-valued sequential decisions, and it is not blind."""

import numpy as np
import pytest

from quantgate.evaluation import quality
from quantgate.variants.registry import VARIANTS
from tests.conftest import ROOT
from tests.test_agreement import _session


@pytest.fixture(scope="module")
def reranker_gate(shared_reranker, scifact, tmp_path_factory):
    # 20 queries decide only with min_queries lowered to 20 (the default, 100, keeps a changed variant undecided)
    folder = tmp_path_factory.mktemp("thresholds")
    (folder / "thresholds.toml").write_text((ROOT / "thresholds.toml").read_text().replace(
        "min_queries = 100", "min_queries = 20"))
    return _session(tmp_path_factory.mktemp("cache"), shared_reranker, [scifact], max_queries=20, top_k=10,
                    thresholds=folder / "thresholds.toml")


@pytest.fixture(scope="module")
def embedder_gate(tmp_path_factory):
    return _session(tmp_path_factory.mktemp("cache"))  # the shipped set: reranking and full-corpus retrieval


@pytest.mark.parametrize("which", ["reranker_gate", "embedder_gate"])
def test_fp32_equivalent_variants_pass(request, which):
    gate = request.getfixturevalue(which)
    for vid in ("onnx", "openvino"):
        qualities, decisions, failures = gate.evaluator.quality_check(VARIANTS[vid])
        assert failures == [], failures
        assert all(abs(d.loss) < 1e-3 and d.decision == "pass" for d in decisions), decisions
    tasks = {(q.task, m) for q in qualities for m in q.scores}
    expected = {("reranking", "map"), ("reranking", "ndcg_at_10")}
    if which == "embedder_gate":
        expected |= {("retrieval", "ndcg_at_10")}
    assert tasks == expected


def test_a_degraded_variant_fails(reranker_gate):
    noise = reranker_gate.context.registry.variants["mutant-noise"]
    _, decisions, failures = reranker_gate.evaluator.quality_check(noise)
    assert failures, [d.to_dict() for d in decisions]
    assert any("FAIL, lower bound" in f and "one-sided 97% bounds" in f for f in failures)


def test_twelve_queries_leave_a_degraded_variant_to_agreement(embedder_gate):
    """Under min_queries a changed variant's quality is undecided ("needs about N queries"); the broken
    variant still fails, on agreement, at the first look."""
    evaluation = embedder_gate.evaluator.evaluation(embedder_gate.context.registry.variants["mutant-noise"])
    assert evaluation.decision == "fail" and evaluation.agreement_failures
    assert all(d.decision == "inconclusive" for d in evaluation.decisions)


def test_numbers_agree_with_running_mteb_directly(reranker_gate):
    import mteb

    gate = reranker_gate
    dataset = gate.context.datasets[0]
    ours = gate.evaluator.quality_of(gate.context.reference, dataset, "reranking")
    groups = gate.store.scores(gate.context.reference, dataset).by_query()
    qids = sorted(ours.per_query["map"])
    task = quality.build_task(dataset, qids, {q: groups[q][0] for q in qids})
    model = gate.factory.load(gate.context.reference)
    direct = mteb.evaluate(model, task, cache=None, show_progress_bar=False, encode_kwargs={"batch_size": 32})
    scores = direct.task_results[0].scores["test"][0]
    assert scores["map_at_1000"] == pytest.approx(ours.scores["map"], abs=1e-4)
    assert scores["ndcg_at_10"] == pytest.approx(ours.scores["ndcg_at_10"], abs=1e-4)
    # the per-query values behind the decisions average to mteb's number
    assert np.mean(list(ours.per_query["ndcg_at_10"].values())) == pytest.approx(ours.scores["ndcg_at_10"], abs=1e-4)


def test_embedder_retrieval_from_the_scoring_pass_equals_mteb_encoding_the_corpus(tmp_path):
    """Embedders encode the corpus once, in the scoring pass; retrieval from those embeddings gives
    mteb's own numbers (mteb encoding the corpus itself through its SentenceTransformer wrapper)."""
    from quantgate.evaluation.quality import evaluate_model
    from quantgate.session.core import GateSession, GateSettings

    gate = GateSession(GateSettings(cache_dir=str(tmp_path), thresholds=str(ROOT / "thresholds.toml"), device="cpu",
                                    variants=("torch-fp32",)))
    dataset = gate.context.datasets[0]
    one_pass = gate.evaluator.quality_of(gate.context.reference, dataset, "retrieval")
    mteb_own = evaluate_model(dataset, gate.factory.load(gate.context.reference), gate.context.order(dataset), 32)
    assert one_pass.scores["ndcg_at_10"] == pytest.approx(mteb_own.scores["ndcg_at_10"], abs=1e-4)
    assert one_pass.per_query["ndcg_at_10"].keys() == mteb_own.per_query["ndcg_at_10"].keys()
    # the corpus was in the pass
    assert len(gate.store.scores(gate.context.reference, dataset).texts) >= len(dataset.corpus)


def test_a_variant_that_runs_the_same_model_takes_its_scores(embedder_gate, tmp_path):
    """Optimum's arm64 and avx512 dynamic int8 presets write the same graph: the second variant takes the first's
    scores, and they are exactly what it scores on its own; avx2's graph differs and is scored."""
    gate = embedder_gate
    variants = gate.context.registry.variants
    arm64, avx512, avx2 = (variants[f"onnx-qint8-{isa}"] for isa in ("arm64", "avx512", "avx2"))
    assert gate.factory.outputs_key(arm64) == gate.factory.outputs_key(avx512) != gate.factory.outputs_key(avx2)
    looks = []
    for spec in (arm64, avx512, avx2):
        gate.evaluator.evaluation(spec)
        looks.append(len(gate.run.looks))
    first, second, third = (gate.evaluator.evaluation(spec) for spec in (arm64, avx512, avx2))
    assert [u.get("scores_of") for u in second.usage] == ["onnx-qint8-arm64"] * len(second.usage)
    assert all("scores_of" not in u for u in first.usage + third.usage)
    assert [d.to_dict() for d in second.decisions] == [d.to_dict() for d in first.decisions]
    # the same scores: the twin's looks (agreement metrics, mteb evaluations) are not computed again; avx2's are
    assert looks[0] > 0 and looks[1] == looks[0] < looks[2]
    assert [a.variant for a in second.agreement] == ["onnx-qint8-avx512"] * len(second.agreement)
    assert [a.metrics for a in second.agreement] == [a.metrics for a in first.agreement]
    assert [q.to_dict() for q in second.qualities] == [q.to_dict() for q in first.qualities]
    dataset = gate.context.datasets[0].name
    assert gate.run.scores[("onnx-qint8-avx512", dataset)].seconds == 0.0

    alone = _session(tmp_path)
    alone.evaluator.evaluation(alone.context.registry.variants["onnx-qint8-avx512"])
    own = alone.run.scores[("onnx-qint8-avx512", dataset)]
    taken = gate.run.scores[("onnx-qint8-avx512", dataset)]
    assert own.keys == taken.keys and np.array_equal(own.scores, taken.scores)
    assert ("onnx-qint8-avx512", dataset) not in alone.run.shared


def test_scores_from_other_calls_are_not_taken(embedder_gate):
    """Dynamic int8 takes each activation's range from the batch it is in: scores of the same model made in other
    calls (here the twin in two chunks, the variant in one) are not taken."""
    gate = embedder_gate
    variants = gate.context.registry.variants
    dataset = gate.context.datasets[0]
    order = gate.context.order(dataset)
    twin, variant = variants["onnx-qint8-avx512"], variants["onnx-qint8-avx512_vnni"]
    half = gate.store.score_more(twin, dataset, order[:len(order) // 2], None)
    gate.store.score_more(twin, dataset, order[len(order) // 2:], half)
    gate.run.shared.pop((variant.id, dataset.name), None)
    for (vid, name) in [k for k in gate.run.scores if k[0] != twin.id and k[0].startswith("onnx-qint8")]:
        gate.run.scores.pop((vid, name))
    gate.store.score_more(variant, dataset, order, None)
    assert (variant.id, dataset.name) not in gate.run.shared
    assert gate.run.scores[(variant.id, dataset.name)].seconds > 0


@pytest.mark.parametrize("model", ["tiny_reranker", "tiny_embedder"])
def test_scores_do_not_depend_on_the_looks_chunks(request, model, tmp_path):
    """Dynamic int8 takes each activation's range from the batch: a reranker scored one query per call, an embedder
    encoding fixed blocks of the whole order's texts, get the same scores in the sequential looks' chunks as in one
    pass."""
    gate = _session(tmp_path, request.getfixturevalue(model))
    dataset = gate.context.datasets[0]
    order = gate.context.order(dataset)
    variant = gate.context.registry.variants["onnx-qint8-avx2"]
    first = gate.store.score_more(variant, dataset, order[:5], None)
    chunked = gate.store.score_more(variant, dataset, order[5:], first)
    gate.run.scores.pop((variant.id, dataset.name))
    gate.run.chunks.pop((variant.id, dataset.name))
    whole = gate.store.score_more(variant, dataset, order, None)
    assert chunked.keys == whole.keys and np.array_equal(chunked.scores, whole.scores)


def test_an_embedders_chunks_encode_the_blocks_of_one_pass():
    """Every text has one block of the whole order: the chunks' calls are the one pass's calls, split between them."""
    from quantgate.evaluation.scoring import CHUNK_BATCHES, _text_blocks

    plan = [(f"q{i}", f"d{i}-{j}", f"query {i}", f"passage {i} {j}") for i in range(6) for j in range(7)]
    texts = list(dict.fromkeys([q for _, _, q, _ in plan] + [p for _, _, _, p in plan]))
    one, ends = _text_blocks(texts, texts, batch_size=1)
    calls = [one[a:b] for a, b in zip([0, *ends], ends)]
    assert all(len(call) == CHUNK_BATCHES for call in calls[:-1]) and sorted(one) == sorted(texts)
    first = list(dict.fromkeys([q for _, _, q, _ in plan[:14]] + [p for _, _, _, p in plan[:14]]))
    early, early_ends = _text_blocks(first, texts, batch_size=1)
    later, later_ends = _text_blocks([t for t in texts if t not in early], texts, batch_size=1)
    chunked = [early[a:b] for a, b in zip([0, *early_ends], early_ends)] + \
        [later[a:b] for a, b in zip([0, *later_ends], later_ends)]
    assert chunked == calls
    outside, outside_ends = _text_blocks(["not in the plan", "query 0"], texts, batch_size=1)
    assert outside == calls[0] + ["not in the plan"] and outside_ends == [CHUNK_BATCHES, CHUNK_BATCHES + 1]
