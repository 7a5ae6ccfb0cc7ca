"""openvino-qint8-ac's coarse-to-fine ranking of NNCF's groups of quantizers, with NNCF's own ranking replaced by a
model of it (a group's score: how much its revert gives back, additive over its quantizers; one compile per group
scored), so the search itself is checked on many shapes without a compile. The real build on the shared reranker:
tests/test_accuracy_control.py."""

from types import SimpleNamespace

import pytest

pytest.importorskip("nncf")

from nncf.quantization.algorithms.accuracy_control import algorithm, ranker

from quantgate.backends.openvino_ac import ranked_coarse_to_fine, validated_compressed


def ranked(benefit: list[float], max_trials: int, monkeypatch) -> tuple[list[int], int]:
    """The coarse-to-fine ranking of groups 0..n-1 (group i: quantizer qi, topological position i, listed in NNCF's
    reversed order) and how many reverted models NNCF's ranking was asked to score."""
    scored = []

    def nncf_ranking(self, groups, model, graph, reference, approximate):
        scored.append(len(groups))
        value = {id(g): sum(benefit[int(q.node_name[1:])] for q in g.quantizers) for g in groups}
        return sorted(groups, key=lambda g: value[id(g)])

    monkeypatch.setattr(ranker.Ranker, "rank_groups_of_quantizers", nncf_ranking)
    nodes = [SimpleNamespace(node_name=f"q{i}") for i in range(len(benefit))]
    graph = SimpleNamespace(topological_sort=lambda: nodes)
    groups = [ranker.GroupToRank([node], [SimpleNamespace(node_name=f"op{node.node_name}")]) for node in nodes]
    with ranked_coarse_to_fine(max_trials):
        result = algorithm.Ranker(4, None, None, None).rank_groups_of_quantizers(groups[::-1], None, graph, [], [])
    assert algorithm.Ranker is ranker.Ranker  # NNCF's own ranker is back after the call
    return [int(g.quantizers[0].node_name[1:]) for g in result], sum(scored)


@pytest.mark.parametrize("groups, max_trials", [(46, 2), (63, 3), (150, 3), (12, 1)])
def test_the_groups_that_matter_most_are_found_with_fewer_compiles(groups, max_trials, monkeypatch):
    import numpy as np

    best = 0
    for seed in range(50):
        benefit = list(np.random.default_rng(seed).exponential(0.01, groups))  # most give back little, a few much
        order, compiles = ranked(benefit, max_trials, monkeypatch)
        assert sorted(order) == list(range(groups))  # every group still ranked, none twice
        assert benefit[order[-1]] >= np.quantile(benefit, 0.75)  # the first revert is always among the best quarter
        best += order[-1] == int(np.argmax(benefit))
        assert compiles <= 2 * np.sqrt(groups * max_trials) + 2 < groups
    # and is the one NNCF's full ranking would make in most draws (measured: 58-86% of these 50 seeds)
    assert best > 25


def test_the_best_groups_of_each_refined_block_are_ranked_one_by_one(monkeypatch):
    benefit = [0.0] * 40
    benefit[3], benefit[30], benefit[31] = 0.5, 0.3, 0.2  # two blocks hold every group that helps
    order, _ = ranked(benefit, 2, monkeypatch)
    assert order[-3:] == [31, 30, 3]


def test_a_few_groups_are_ranked_one_by_one_as_nncf_does(monkeypatch):
    order, compiles = ranked([0.3, 0.1, 0.2, 0.0, 0.4], 3, monkeypatch)
    assert order == [3, 1, 2, 0, 4] and compiles == 5


def test_no_ranking_once_the_last_trial_is_made(monkeypatch):
    calls = []
    monkeypatch.setattr(ranker.Ranker, "rank_groups_of_quantizers", lambda self, groups, *a: calls.append(1) or groups)
    monkeypatch.setattr(algorithm, "revert_operations_to_floating_point_precision", lambda *a, **k: "reverted")
    graph = SimpleNamespace(topological_sort=lambda: [])
    with ranked_coarse_to_fine(2) as reverts:
        restorer_ranker = algorithm.Ranker(4, None, None, None)
        for trial in range(3):
            restorer_ranker.rank_groups_of_quantizers([], None, graph, [], [])
            if trial < 2:  # the loop's trial, from the plain model first (NNCF's positional call)
                start = "plain" if trial == 0 else "reverted"
                assert algorithm.revert_operations_to_floating_point_precision([], [], start, graph) == "reverted"
    assert len(calls) == 2  # the initial ranking and the re-ranking after trial 1; none after trial 2, the last
    assert reverts.count == 2 and reverts.start == "plain"  # what the build falls back to if the reverts lost more


def test_every_model_nncf_compiles_is_compressed_first(monkeypatch):
    import openvino._offline_transformations as transformations
    from nncf.quantization.algorithms.accuracy_control import openvino_backend

    compiled = []

    class Model:
        compressed = False

        def clone(self):
            return Model()

    class Prepared:  # NNCF's OVPreparedModel, without a compile
        def __init__(self, model, use_fp32_precision=True):
            compiled.append(model.compressed)

    monkeypatch.setattr(openvino_backend, "OVPreparedModel", Prepared)
    monkeypatch.setattr(transformations, "compress_quantize_weights_transformation",
                        lambda model: setattr(model, "compressed", True))
    monkeypatch.setattr(ranker.Ranker, "rank_groups_of_quantizers",
                        lambda self, groups, *a: [openvino_backend.OVPreparedModel(Model()) for _ in groups] and groups)
    graph = SimpleNamespace(topological_sort=lambda: [])
    with validated_compressed(), ranked_coarse_to_fine(3):
        openvino_backend.OVPreparedModel(Model())  # the quantized model's validation
        algorithm.Ranker(4, None, None, None).rank_groups_of_quantizers([1, 2], None, graph, [], [])
        openvino_backend.OVPreparedModel(Model())  # a trial's validation
    assert compiled == [True, True, True, True]
    assert openvino_backend.OVPreparedModel is Prepared


def test_the_ranking_reverts_groups_as_the_restorer_does():
    # NNCF 3.4's restorer builds its ranker without its restore mode: with SmoothQuant's ONLY_ACTIVATIONS, groups
    # were ranked by models with their original weights put back under smoothed activations
    from nncf.quantization.advanced_parameters import RestoreMode

    assert algorithm.Ranker(4, None, None, None)._restore_mode == RestoreMode.ACTIVATIONS_AND_WEIGHTS  # NNCF's own
    with ranked_coarse_to_fine(3, RestoreMode.ONLY_ACTIVATIONS):
        assert algorithm.Ranker(4, None, None, None)._restore_mode == RestoreMode.ONLY_ACTIVATIONS
        # reverting activations and weights needs the FakeQuantize weights: no compressed copy to rank from
        with ranked_coarse_to_fine(3, RestoreMode.ACTIVATIONS_AND_WEIGHTS):
            assert algorithm.Ranker(4, None, None, None)._compressed([], None, None) is None


def test_with_only_activations_reverted_the_ranking_reverts_from_one_compressed_copy(monkeypatch):
    import openvino._offline_transformations as transformations
    from nncf.quantization.advanced_parameters import RestoreMode
    from nncf.quantization.algorithms.accuracy_control import openvino_backend

    compressions, compiled, ranked_from = [], [], []

    class Model:
        compressed = False

        def clone(self):
            return Model()

        def get_ops(self):  # the activation quantizer is still there once the weights are compressed
            return [SimpleNamespace(get_friendly_name=lambda: "fq_activation")]

    class Prepared:  # NNCF's OVPreparedModel, without a compile
        def __init__(self, model, use_fp32_precision=True):
            compiled.append(model.compressed)

    def compress(model):
        compressions.append(1)
        model.compressed = True

    def nncf_ranking(self, groups, model, *rest):
        ranked_from.append(model.compressed)
        return [openvino_backend.OVPreparedModel(model) for _ in groups] and groups

    monkeypatch.setattr(openvino_backend, "OVPreparedModel", Prepared)
    monkeypatch.setattr(transformations, "compress_quantize_weights_transformation", compress)
    monkeypatch.setattr(ranker.Ranker, "rank_groups_of_quantizers", nncf_ranking)
    group = ranker.GroupToRank([SimpleNamespace(node_name="fq_activation")], [])
    with validated_compressed(), ranked_coarse_to_fine(3, RestoreMode.ONLY_ACTIVATIONS):
        restorer_ranker = algorithm.Ranker(4, None, SimpleNamespace(get_op_with_weights_metatypes=lambda: []), None)
        restorer_ranker.rank_groups_of_quantizers([group, group], Model(), SimpleNamespace(), [], [])
        openvino_backend.OVPreparedModel(Model())  # a trial's validation
    assert ranked_from == [True] and compiled == [True, True, True]  # every model compiled is compressed ...
    assert len(compressions) == 2  # ... once for the ranking's two models, once for the trial
