"""Accuracy-controlled int8 (`openvino-qint8-ac`): NNCF's `quantize_with_accuracy_control`, with the calibration and
quantization settings of `openvino-qint8`, the variant's relative MAP limit (`DropType.RELATIVE`: NNCF's default drop
is absolute) and a validation function that scores the held-out validation split through the same
sentence-transformers model and mteb evaluation the gate uses (quantgate.evaluation.tuning).

Four changes to how NNCF 3.4 runs it, each a subclass put in place for the call only:

- **Every model is validated as it will be saved.** NNCF validates its candidates with the weights still behind
  FakeQuantize and compresses them to int8 only in the model it returns; the numerics differ (the shared reranker's
  tight build: NNCF's loss 8.27%, the saved model's 9.43%), so a model NNCF accepted could miss the limit once saved,
  and quantgate had to run NNCF a second time (the base embedder: two rankings of 63 groups). Each model NNCF compiles
  is now compressed first, the transformation NNCF applies when it returns: NNCF's loss is the saved model's.
- **The ranking reverts groups as the restorer does.** NNCF 3.4's restorer builds its ranker without its restore
  mode, so with `ONLY_ACTIVATIONS` (below) each group was ranked by a model with its original weights put back
  under smoothed activations — a model no trial would make. The ranker now gets the restorer's mode; and since
  reverting only activation quantizers leaves every weight as it is, the ranking's models are reverted from one
  compressed copy instead of each being compressed (1.1 s) before its compile (0.9 s instead of 2.3 s a model, base
  embedder on 2 cores). On that embedder NNCF then met the 1% limit after 2 trials with no MatMul in float (before:
  +1.32% after 3 trials, 2 MatMuls in float).
- **Groups of quantizers are ranked coarse to fine.** NNCF ranks by compiling the model once per group with that
  group reverted (46 groups for MiniLM-L6, 63 for a BERT-base embedder; a compile takes about a second at base
  size on 2 cores, as much as the ranking queries' scoring), and the greedy loop then reverts at most
  `max_trials` of them. The groups are put in blocks of neighbours (topological order), the blocks ranked with NNCF's
  own ranker (each block reverted at once), and only the groups of the best blocks ranked one by one: about
  2·sqrt(groups·trials) compiles instead of one per group. Every revert is still validated on the whole split by
  NNCF, so the limit is met or reported missed the same way; what can differ is which groups are reverted.
- **No ranking after the last trial.** NNCF re-ranks the remaining groups after a step back (a revert that made the
  loss worse) even when its last iteration is spent and the ranking cannot be used: on the base embedder that was a
  second ranking of 27 models, 91 s of NNCF's 225 s.

And one change to what it returns: NNCF's greedy loop keeps the first revert that makes the loss worse (its "step
back" only undoes the next), so with its trials spent it can return a model that loses more than the plain
quantization it started from (the shared reranker on 30 unseen scifact queries, 10 candidates each, at zero loss:
+3.61% with one MatMul in float against the plain model's +3.47%). The plain model is then saved instead: a tighter
limit never yields a larger validation loss.

SmoothQuant is on in those settings (alpha 0.95 on MatMuls): activations are multiplied by a per-channel scale and
the weights divided by it. NNCF 3.4's restorer, reverting an operation "to floating point"
(`RestoreMode.ACTIVATIONS_AND_WEIGHTS`), puts back the *original* weight but leaves the scale on the activation: the
reverted MatMul computes a different function (measured here: Kendall tau vs fp32 0.94 -> 0.71 after reverting 4
MatMuls). With SmoothQuant on, operations are therefore reverted with `RestoreMode.ONLY_ACTIVATIONS` (float
activations, the smoothed weights stay int8), and every saved model is checked for that mismatch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, remove_files
from quantgate.backends.openvino_ir import check_smoothing, op_precision
from quantgate.progress import Tracked, bar


class _Ranking:
    """Whether the models being compiled are the ranking's, compressed once before it (a flag, not a context
    variable: NNCF's ranking workers compile from threads)."""

    active = False


@contextlib.contextmanager
def validated_compressed():
    """NNCF's accuracy restorer with each model's weights compressed before it is compiled, as they are saved."""
    from nncf.quantization.algorithms.accuracy_control import openvino_backend
    from openvino._offline_transformations import compress_quantize_weights_transformation

    original = openvino_backend.OVPreparedModel

    class CompressedPreparedModel(original):
        def __init__(self, model, use_fp32_precision: bool = True):
            if not _Ranking.active:
                model = model.clone()
                compress_quantize_weights_transformation(model)
            super().__init__(model, use_fp32_precision)

    openvino_backend.OVPreparedModel = CompressedPreparedModel
    try:
        yield
    finally:
        openvino_backend.OVPreparedModel = original


def ranking_plan(groups: int, max_trials: int) -> tuple[int, int] | None:
    """The coarse-to-fine ranking of `groups` groups of quantizers: (groups in a block, blocks ranked group by group),
    or None where it would not compile fewer models than NNCF's ranking, one per group."""
    refine = max(1, min(max_trials, groups))
    size = max(2, math.ceil(math.sqrt(groups / refine)))
    return None if groups <= size * refine + math.ceil(groups / size) else (size, refine)


def ranking_compiles(groups: int, max_trials: int) -> int:
    """How many models one ranking compiles, at most: a block's or a group's revert each."""
    plan = ranking_plan(groups, max_trials)
    return groups if plan is None else math.ceil(groups / plan[0]) + plan[0] * plan[1]


@dataclasses.dataclass
class Reverts:
    """The reverts NNCF's restorer made in one call, and the model the first one started from."""

    count: int = 0
    start: Any = None


@contextlib.contextmanager
def ranked_coarse_to_fine(max_trials: int, restore_mode=None):
    """NNCF's accuracy restorer with a ranker that ranks blocks of neighbouring groups first, then the groups of the
    `max_trials` best blocks one by one, and does not rank once the restorer's `max_trials` reverts are made."""
    from nncf.quantization.algorithms.accuracy_control import algorithm
    from nncf.quantization.algorithms.accuracy_control.ranker import GroupToRank

    original, revert = algorithm.Ranker, algorithm.revert_operations_to_floating_point_precision
    reverts = Reverts()

    def counted_revert(*args, **kwargs):  # the restorer's own reverts, one per trial (the ranker has its own import)
        if reverts.start is None:
            reverts.start = args[2]  # the model the first revert starts from, NNCF's plain quantization (untouched:
        reverts.count += 1           # NNCF's model transformer works out of place)
        return revert(*args, **kwargs)

    class CoarseToFineRanker(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if restore_mode is not None:  # NNCF 3.4's restorer builds its ranker without its own restore mode
                self._restore_mode = restore_mode

        def rank_groups_of_quantizers(self, groups, quantized_model, graph, reference_values, approximate_values):
            if reverts.count >= max_trials:  # the loop ends after this call: the ranking would go unused
                return groups
            compressed = self._compressed(groups, quantized_model, graph)
            if compressed is None:
                return self._coarse_to_fine(groups, quantized_model, graph, reference_values, approximate_values)
            _Ranking.active = True
            try:
                return self._coarse_to_fine(groups, compressed, graph, reference_values, approximate_values)
            finally:
                _Ranking.active = False

        def _compressed(self, groups, quantized_model, graph):
            """The quantized model with its weights compressed, to revert every ranked group from, where no revert
            would remove a quantizer the compression folded into its weight (only weight quantizers of operations
            NNCF keeps int8 under ONLY_ACTIVATIONS are); else None."""
            from nncf.quantization.advanced_parameters import RestoreMode
            from openvino._offline_transformations import compress_quantize_weights_transformation

            if self._restore_mode != RestoreMode.ONLY_ACTIVATIONS:
                return None

            compressed = quantized_model.clone()
            compress_quantize_weights_transformation(compressed)
            present = {op.get_friendly_name() for op in compressed.get_ops()}
            weighted = self._algo_backend.get_op_with_weights_metatypes()
            kept = {graph.get_input_edges(op)[port].from_node.node_name for g in groups for op in g.operations
                    if op.metatype in weighted and op.layer_attributes and op.layer_attributes.constant_attributes
                    for port in op.layer_attributes.get_const_port_ids()}
            folded = {q.node_name for g in groups for q in g.quantizers} - present
            return compressed if folded <= kept else None

        def _coarse_to_fine(self, groups, quantized_model, graph, reference_values, approximate_values):
            def rank(some):  # NNCF's ranking, ascending: the group whose revert helps most is last
                return super(CoarseToFineRanker, self).rank_groups_of_quantizers(
                    some, quantized_model, graph, reference_values, approximate_values)

            plan = ranking_plan(len(groups), max_trials)
            if plan is None:
                return rank(groups)
            size, refine = plan
            position = {node.node_name: i for i, node in enumerate(graph.topological_sort())}
            ordered = sorted(groups, key=lambda g: min(position[q.node_name] for q in g.quantizers))
            blocks = [ordered[i : i + size] for i in range(0, len(ordered), size)]
            merged = [GroupToRank([q for g in block for q in g.quantizers],
                                  list({op.node_name: op for g in block for op in g.operations}.values()))
                      for block in blocks]
            block_of = {id(m): block for m, block in zip(merged, blocks)}
            order = [block_of[id(m)] for m in rank(merged)]
            return [g for block in order[:-refine] for g in block] + rank(
                [g for block in order[-refine:] for g in block])

    algorithm.Ranker = CoarseToFineRanker
    algorithm.revert_operations_to_floating_point_precision = counted_revert
    try:
        yield reverts
    finally:
        algorithm.Ranker = original
        algorithm.revert_operations_to_floating_point_precision = revert


QINT8_AC = "openvino/openvino_model_qint8_ac.xml"


def build(ctx: BuildContext, out: Path, calibration: Callable, ov_config: dict[str, str]) -> dict[str, Any]:
    """`calibration(ctx, out)`: the plain IR copied into `out`, loaded, and its calibration samples (the static int8
    variant's own, quantgate.backends.openvino); `ov_config`: the variant's runtime options."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters, RestoreMode
    from openvino._offline_transformations import compress_quantize_weights_transformation
    from optimum.intel import OVQuantizationConfig

    tuning = ctx.tuning
    kind = ctx.candidate.kind
    model, samples = calibration(ctx, out)
    ov_model = model.transformers_model
    original_request = ov_model.request

    trials = bar(None, f"{ctx.spec.id}: accuracy-control validations", "validation")
    whole = []  # MAP of each model validated on the whole split, in order: NNCF's plain quantization first

    def validate(compiled_model, qids) -> tuple[float, list[float]]:
        """The gate's metric with NNCF's compiled model in place of the variant's own."""
        qids = list(qids)
        ov_model.request = compiled_model
        try:
            value, per_query = tuning.quality(model, kind, qids)
        finally:
            ov_model.request = original_request
        if len(qids) == len(tuning.qids):
            whole.append(value)
        trials.set_postfix_str(f"MAP {value:.4f} on {len(per_query)} queries", refresh=False)
        trials.update(1)
        return value, per_query

    calls = iter(range(2))

    def recording(compiled_model, qids):
        # NNCF's first two calls are of its float model (a one-item metric-mode probe, the initial validation): the
        # reference's cached validation answers them, the candidate as the quality gate measures it
        if next(calls, None) is not None:
            return tuning.reference_quality(list(qids))
        return validate(compiled_model, qids)

    # openvino-qint8's settings exactly (optimum-intel's OVQuantizationConfig -> NNCF arguments)
    settings = OVQuantizationConfig(num_samples=len(samples)).to_nncf_dict()
    settings.pop("mode", None)
    settings["advanced_quantization_parameters"] = settings.pop("advanced_parameters")
    smoothed = settings["advanced_quantization_parameters"].smooth_quant_alphas.matmul > 0
    restore = RestoreMode.ONLY_ACTIVATIONS if smoothed else RestoreMode.ACTIVATIONS_AND_WEIGHTS
    reference, _ = tuning.reference_quality()
    with validated_compressed(), ranked_coarse_to_fine(tuning.max_trials, restore) as reverts:
        quantized = nncf.quantize_with_accuracy_control(
            ov_model.model,
            nncf.Dataset(Tracked(samples, f"{ctx.spec.id}: calibrating")),
            nncf.Dataset(tuning.qids),
            recording,
            max_drop=tuning.max_loss,
            drop_type=nncf.DropType.RELATIVE,
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=tuning.max_trials,
                ranking_subset_size=min(tuning.ranking_queries, len(tuning.qids)),
                # a second worker compiles the next group while one is validated: 697 s -> 484 s, base embedder
                num_ranking_workers=2,
                restore_mode=restore,
            ),
            **settings,
        )
    # the saved model validated once more: the loss the manifest records is measured on what is saved
    value, _ = validate(ov.compile_model(quantized, "CPU", ov_config), tuning.qids)
    kept = {}
    if reverts.count and value < whole[0]:  # NNCF's reverts lost more than its plain quantization: that is kept
        kept = {"reverted_loss": round(tuning.loss(reference, value), 6), "kept": "plain int8: the reverts lost more"}
        quantized = reverts.start.clone()
        compress_quantize_weights_transformation(quantized)  # as NNCF returns its models
        value, _ = validate(ov.compile_model(quantized, "CPU", ov_config), tuning.qids)
    trials.close()
    check_smoothing(quantized, ov_model.model)
    remove_files(out / "openvino", ["openvino_model.xml", "openvino_model.bin"])
    ov.save_model(quantized, out / QINT8_AC, compress_to_fp16=False)
    return {"backend": "openvino", "file_name": QINT8_AC, "calibration_samples": len(samples),
            **op_precision(quantized), "restore_mode": restore.value,
            "accuracy_control": tuning.summary(reference, value, tool="nncf.quantize_with_accuracy_control",
                                               ranking="coarse-to-fine", validated="compressed weights", **kept)}
