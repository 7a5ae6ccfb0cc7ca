"""Accuracy-controlled int8: validation is disjoint from calibration and evaluation, the limit
comes from thresholds.toml, and a tighter limit never yields a larger validation loss."""

import pytest

from quantgate.evaluation.data import DataFormatError, load
from quantgate.evaluation.splits import split_test
from quantgate.session.core import GateSession, GateSettings
from tests.conftest import ROOT, thresholds_file


def test_held_out_train_queries_are_never_calibrated_on_nor_evaluated(shared_reranker, scifact, tmp_path):
    gate = GateSession(GateSettings(candidate=str(shared_reranker), cache_dir=str(tmp_path), data=(str(scifact),),
                                    thresholds=str(ROOT / "thresholds.toml"), device="cpu"))
    validation = gate.context.validation
    held_out = {validation.queries[q] for q in validation.candidates}
    assert len(held_out) == 100  # thresholds.toml validation_queries
    calibration_queries = {query for query, _ in gate.factory.calibration()[0]}
    evaluation_queries = {gate.context.datasets[0].queries[q] for q in gate.context.datasets[0].test_qrels}
    assert not held_out & calibration_queries and not held_out & evaluation_queries
    for qid, docs in validation.candidates.items():  # every list holds its relevant passages and hard negatives
        relevant = set(validation.test_qrels[qid])
        assert relevant <= set(docs) and len(docs) >= 20 and set(docs) - relevant


def test_split_gives_disjoint_folders_and_overlap_is_refused(shared_reranker, scifact, tmp_path):
    validation, evaluation = split_test(scifact, tmp_path / "split", 50, seed=0)
    held, kept = load(validation), load(evaluation)
    assert len(held.test_qrels) == 50 and len(kept.test_qrels) == len(load(scifact).test_qrels) - 50
    assert not set(held.test_qrels) & set(kept.test_qrels)
    assert set(held.candidates) == set(held.test_qrels) and kept.qrels.get("train")  # evaluation keeps calibration
    assert split_test(scifact, tmp_path / "split", 50, seed=0) == (validation, evaluation)  # rerun: replaced in place
    with pytest.raises(DataFormatError, match="validation must be disjoint from evaluation"):
        GateSession(GateSettings(candidate=str(shared_reranker), cache_dir=str(tmp_path / "c"),
                                 data=(str(evaluation),), validation_data=str(evaluation),
                                 thresholds=str(ROOT / "thresholds.toml"), device="cpu")).resolve()


def _tuned(variant: str, limits: dict[str, float], shared_reranker, scifact, tmp_path) -> tuple[dict, GateSession]:
    """The real reranker tuned on unseen scifact queries at each limit: the build's load manifest per limit name."""
    validation, evaluation = split_test(scifact, tmp_path / "split", 30, seed=0)
    # NNCF gets 2 trials: its third revert here made the loss worse, and the step back ranked every group again
    trials = 2 if variant == "openvino-qint8-ac" else 4
    tuned = {}
    for name, limit in limits.items():
        # 10 candidates a query of scifact's 30: NNCF's validations and ranking models score a third of the pairs
        # (on the AVX2-only EPYC a validation of 360 pairs took 30 s; the two tuning tests 455 s -> 219 s, 177 -> 100 s)
        thresholds = thresholds_file(tmp_path / name, {variant: limit}, validation_queries=12, validation_candidates=10,
                                     max_trials=trials, ranking_queries=4)
        gate = GateSession(GateSettings(candidate=str(shared_reranker), cache_dir=str(tmp_path / "cache"),
                                        data=(str(evaluation),), validation_data=str(validation), device="cpu",
                                        thresholds=str(thresholds), calibration_samples=64, variants=(variant,)))
        spec = gate.context.registry.variants[variant]
        assert gate.factory.tuning(spec).max_loss == limit  # the quality gate's own limit for this variant
        tuned[name] = gate.factory.artifact(spec).manifest["load"]
        result = tuned[name]["accuracy_control"]
        assert result["met"] == (result["loss"] <= result["max_loss"])
        # the reference is the candidate's own (torch-fp32) validation MAP, scored once and cached
        assert result["reference"] == round(gate.store.reference_validation()[0], 6)
    return tuned, gate


def test_a_tighter_limit_never_yields_a_larger_validation_loss(shared_reranker, scifact, tmp_path):
    """NNCF's accuracy control on the real reranker, twice: at a loose limit and at zero loss. Loose is a limit plain
    int8 meets here (it loses ~3.5% on this split), so the loose build is the plain quantization and the tight one must
    revert operations, keeping them only where they lost less (here they lost more: +3.61%). At 0.05 both builds ranked
    every group and stopped at the same model (max_trials reached): 11 minutes for one answer."""
    tuned, _ = _tuned("openvino-qint8-ac", {"loose": 0.25, "tight": 0.0}, shared_reranker, scifact, tmp_path)
    loose, tight = tuned["loose"]["accuracy_control"], tuned["tight"]["accuracy_control"]
    print(f"\nopenvino-qint8-ac: loose {loose['loss']:+.4f} ({tuned['loose']['ops_float']} float ops), "
          f"tight {tight['loss']:+.4f} ({tuned['tight']['ops_float']} float ops), NNCF's reverts "
          f"{tight.get('reverted_loss', tight['loss']):+.4f}")
    assert loose["reference"] == tight["reference"]  # the same validation split and metric
    assert tight["loss"] <= loose["loss"] + 1e-9, (loose, tight)
    assert tuned["tight"]["ops_float"] >= tuned["loose"]["ops_float"]  # what it kept in float to get there
    if "kept" in tight:  # NNCF's reverts lost more (its greedy loop keeps one that does): the plain model is saved
        assert tight["reverted_loss"] > tight["loss"] == loose["loss"] and tuned["tight"]["ops_float"] == 0


def test_inc_autotune_tunes_against_the_references_own_validation(shared_reranker, scifact, tmp_path):
    """INC's autotune on the real reranker at zero loss. Its plain int8 loses nothing on this split (asserted below),
    so a looser limit builds the same model (0 float ops at 0.25 and at 0.0, measured: two builds, 169 s, for one
    answer): one build."""
    tuned, _ = _tuned("inc-int8-autotune", {"tight": 0.0}, shared_reranker, scifact, tmp_path)
    result = tuned["tight"]["accuracy_control"]
    assert result["tool"] == "neural_compressor autotune" and result["max_loss"] == 0.0
    assert result["met"] and tuned["tight"]["ops_float"] == 0  # plain int8 meets zero loss here: nothing reverted


def test_a_reverted_matmul_with_a_smoothed_input_and_its_original_weight_is_refused():
    """NNCF 3.4's restorer can put back a MatMul's original weight behind a SmoothQuant-scaled
    input (measured: Kendall tau 0.94 -> 0.71 for openvino-qint8-ac). Such a model is refused."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    from quantgate.backends.openvino_ir import check_smoothing

    rng = np.random.default_rng(0)
    weight, scale = rng.normal(size=(4, 8)).astype(np.float32), rng.uniform(0.2, 0.5, size=8).astype(np.float32)

    def model(smoothed: bool, w: np.ndarray) -> ov.Model:
        x = ops.parameter([1, 8], np.float32, name="x")
        source = ops.multiply(x, ops.constant(scale), name="ln/nncf_smooth_quant") if smoothed else x
        matmul = ops.matmul(source, ops.constant(w, name="w"), transpose_a=False, transpose_b=True, name="dense/MatMul")
        return ov.Model([matmul], [x])

    original = model(False, weight)
    check_smoothing(model(True, weight / scale), original)  # smoothed input, smoothed weight: the same function
    with pytest.raises(RuntimeError, match="SmoothQuant scales its input but its weight is the original"):
        check_smoothing(model(True, weight), original)


@pytest.mark.parametrize("named", [(), ("openvino-*",), ("openvino-qint8", "openvino-qint8-ac")])
@pytest.mark.parametrize("plain_decision", ["pass", "inconclusive", "fail"])
def test_accuracy_control_runs_only_where_plain_int8_did_not_pass(tmp_path, named, plain_decision):
    """openvino-qint8-ac keeps layers in floating point until the int8 loss is within the limit: after openvino-qint8
    passed in the same run it has nothing to recover and is skipped with the reason, unless named by its id."""
    gate = GateSession(GateSettings(cache_dir=str(tmp_path / "cache"), device="cpu", variants=named))
    tuned = gate.context.registry.variants["openvino-qint8-ac"]
    assert gate.tuning_skip(tuned) is None  # its plain variant not gated (yet): built
    failures = ["agreement: cosine_min"] if plain_decision == "fail" else []
    gate.run.verdict.variants["openvino-qint8"] = {"gates": {"quality": {"decision": plain_decision, "passed": True}},
                                                   "failures": failures}
    why = gate.tuning_skip(tuned)
    if plain_decision == "pass" and "openvino-qint8-ac" not in named:
        assert why.startswith("openvino-qint8 passed every gate: accuracy control has no int8 loss to recover")
        assert gate.run.verdict.header["skipped"]["openvino-qint8-ac"] == why
    else:
        assert why is None
