"""openvino-qint8-ac built three ways, to measure what each of quantgate's two changes to NNCF's accuracy restorer
(quantgate.backends.openvino_ac) does: `nncf` (NNCF 3.4 as shipped: weights behind FakeQuantize while validated, one
compile per group ranked), `compressed` (weights compressed before each validation, NNCF's ranking) and `default`
(both changes: what the gate runs). The shared reranker's tight build as tests/test_accuracy_control.py sets it (30
scifact test queries held out, 12 x 10 validation split, limit 0, 2 trials, 4 ranking queries, 64 calibration
inputs); prints the build time, the saved model's loss, its float MatMuls and the compiles NNCF made.

    python scripts/ac_methods.py nncf /tmp/ac/nncf
    python scripts/ac_methods.py compressed /tmp/ac/compressed
    python scripts/ac_methods.py default /tmp/ac/default
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nncf.quantization.algorithms.accuracy_control import openvino_backend

from quantgate.backends import openvino_ac
from quantgate.evaluation.splits import split_test
from quantgate.session.core import GateSession, GateSettings
from tests.conftest import RERANKER, SCIFACT, thresholds_file

VARIANT = "openvino-qint8-ac"


def count_compiles() -> list[int]:
    compiles = [0]
    original = openvino_backend.OVPreparedModel.__init__

    def counted(self, *args, **kwargs) -> None:
        compiles[0] += 1
        original(self, *args, **kwargs)

    openvino_backend.OVPreparedModel.__init__ = counted
    return compiles


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode in ("nncf", "compressed"):
        openvino_ac.ranked_coarse_to_fine = lambda *args: contextlib.nullcontext()
    if mode == "nncf":
        openvino_ac.validated_compressed = contextlib.nullcontext
    compiles = count_compiles()
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
                      "ops_float": load["ops_float"], "nncf_compiles": compiles[0]}, indent=1))


if __name__ == "__main__":
    main()
