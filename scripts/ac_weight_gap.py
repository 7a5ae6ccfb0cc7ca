"""NNCF's accuracy control validates a model whose weights are still behind FakeQuantize and compresses them to int8
only when it returns, so the saved model's loss is not the one NNCF decided on. This builds the shared reranker's
tight `openvino-qint8-ac` as tests/test_accuracy_control.py does (30 scifact test queries held out, 12 x 10
validation split, limit 0, 2 trials, 4 ranking queries, 64 calibration inputs), as NNCF does it (`plain`) or with
every model NNCF validates compressed first, as the saved one will be (`compressed`: a patch of NNCF's
OVPreparedModel, for measuring only), and prints the build time, the saved model's loss and NNCF's attempts.

    python scripts/ac_weight_gap.py plain /tmp/gap/plain
    python scripts/ac_weight_gap.py compressed /tmp/gap/compressed
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nncf.quantization.algorithms.accuracy_control import openvino_backend
from openvino._offline_transformations import compress_quantize_weights_transformation

from quantgate.evaluation.splits import split_test
from quantgate.session.core import GateSession, GateSettings
from tests.conftest import RERANKER, SCIFACT, thresholds_file

VARIANT = "openvino-qint8-ac"


def compress_before_validating() -> None:
    original = openvino_backend.OVPreparedModel.__init__

    def prepared(self, model, use_fp32_precision: bool = True) -> None:
        copy = model.clone()
        compress_quantize_weights_transformation(copy)
        original(self, copy, use_fp32_precision)

    openvino_backend.OVPreparedModel.__init__ = prepared


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "compressed":
        compress_before_validating()
    validation, evaluation = split_test(SCIFACT, out / "split", 30, seed=0)
    thresholds = thresholds_file(out / "thresholds", {VARIANT: 0.0}, validation_queries=12, validation_candidates=10,
                                 max_trials=2, ranking_queries=4)
    gate = GateSession(GateSettings(candidate=str(RERANKER), cache_dir=str(out / "cache"), data=(str(evaluation),),
                                    validation_data=str(validation), device="cpu", thresholds=str(thresholds),
                                    calibration_samples=64, variants=(VARIANT,)))
    gate.store.reference_validation()  # scored once before the build, as a gate run does
    started = time.perf_counter()
    load = gate.factory.artifact(gate.context.registry.variants[VARIANT]).manifest["load"]
    control = load["accuracy_control"]
    print(json.dumps({"mode": mode, "build_s": round(time.perf_counter() - started, 1), "loss": control["loss"],
                      "ops_float": load["ops_float"], "attempts": control.get("attempts")}, indent=1))


if __name__ == "__main__":
    main()
