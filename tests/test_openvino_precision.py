"""OpenVINO at the CPU plugin's default precision: `openvino-bf16` and `openvino-qint8-bf16` run the
files of `openvino` and `openvino-qint8` in bf16, what `backend="openvino"` runs by default on a CPU with
AVX512-BF16/AMX; what each variant ran with is read back from the compiled model."""

import json

import numpy as np
import pytest

from quantgate.backends import openvino
from quantgate.core import machine
from quantgate.evaluation.scoring import score
from quantgate.variants.factory import skip_reason
from quantgate.variants.registry import VARIANTS
from tests.test_backends import _factory
from tests.test_plugin import run_gate
from tests.test_registry import DEPLOYED_IDS

NO_BF16 = openvino.cpu_bf16_missing()
needs_bf16 = pytest.mark.skipif(NO_BF16 is not None, reason=str(NO_BF16))


def test_bf16_variants_skip_with_the_reason_on_a_cpu_without_bf16(monkeypatch):
    """An AVX-512 VNNI CPU without AVX512-BF16/AMX (simulated): OpenVINO would run bf16 requests in f32."""
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    for vid in DEPLOYED_IDS:
        why = skip_reason(VARIANTS[vid], "cpu")
        assert why and why.startswith(f"{vid} needs a CPU with native bf16 (avx512_bf16 or amx_bf16"), why
        assert "runs a bf16 request in f32" in why and "avx2/avx512f/avx512_vnni" in why
    assert skip_reason(VARIANTS["openvino"], "cpu") is None and skip_reason(VARIANTS["openvino-qint8"], "cpu") is None
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert all(skip_reason(VARIANTS[vid], "cpu") is None for vid in DEPLOYED_IDS)
    assert all("CPU only" in skip_reason(VARIANTS[vid], "cuda") for vid in DEPLOYED_IDS)


def test_cache_keys_ignore_the_shared_artifact_field():
    """artifact_of is not part of a spec's key material: adding the field rebuilt no existing artifact."""
    assert all("artifact_of" not in json.loads(spec.key_material()) for spec in VARIANTS.values())


@needs_bf16
@pytest.mark.parametrize("f32, bf16", [("openvino", "openvino-bf16"), ("openvino-qint8", "openvino-qint8-bf16")])
def test_bf16_runs_the_f32_variants_files_and_reads_its_precision_back(tiny_reranker, tmp_path, f32, bf16):
    factory, data = _factory(tiny_reranker, tmp_path / "cache")
    built = factory.artifact(VARIANTS[f32])
    before = factory.built_count()
    assert factory.artifact(VARIANTS[bf16]).path == built.path and factory.built_count() == before  # no copy
    assert factory.is_cached(VARIANTS[bf16]) and factory.key(VARIANTS[bf16]) == factory.key(VARIANTS[f32])
    scores = {vid: score(factory.load(VARIANTS[vid]), "reranker", data, top_k=4, max_queries=3).scores
              for vid in (f32, bf16)}
    assert factory.runtime[f32]["inference_precision"] == "f32"
    assert factory.runtime[bf16]["inference_precision"] == "bf16"
    assert factory.runtime[bf16]["asked"]["ov_config"]["INFERENCE_PRECISION_HINT"] == "bf16"
    assert factory.runtime[bf16]["artifact_of"] == f32
    assert not np.array_equal(scores[f32], scores[bf16])  # it computed in bf16, not f32 under another name
    assert np.corrcoef(scores[f32], scores[bf16])[0, 1] > 0.9


@needs_bf16
def test_a_gate_run_records_what_each_variant_ran_with(tmp_path):
    report = tmp_path / "report"
    out = run_gate("--variants", "torch-fp32,openvino,openvino-bf16", "--gate-cache", str(tmp_path / "cache"),
                   "--gate-report", str(report), "--gate-speed-rounds", "1", "--gate-latency-inputs", "20")
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
    assert ("quantgate: OpenVINO asked for: openvino f32, openvino-bf16 bf16; its CPU plugin's default here: bf16"
            in out.stdout)
    assert "artifacts built this run: 2;" in out.stdout  # torch-fp32 and openvino: openvino-bf16 runs its files
    verdict = json.loads((report / "verdict.json").read_text())
    runtime = {vid: entry["runtime"] for vid, entry in verdict["variants"].items()}
    assert runtime["torch-fp32"]["dtype"] == "float32"
    assert runtime["openvino"]["inference_precision"] == "f32"
    assert runtime["openvino-bf16"]["inference_precision"] == "bf16"
    bf16 = verdict["variants"]["openvino-bf16"]
    assert {"build", "agreement", "quality", "speed-b1", "speed-b32"} <= set(bf16["gates"])
    assert bf16["artifact"]["path"] == verdict["variants"]["openvino"]["artifact"]["path"]
    summary = (report / "summary.md").read_text()
    assert ("`openvino` OpenVINO f32 · `openvino-bf16` OpenVINO bf16 (the files of `openvino`)" in summary), summary


def test_a_variant_whose_compiled_precision_is_not_the_one_asked_is_refused(tiny_reranker, tmp_path, monkeypatch):
    """CPU flags that promise bf16 OpenVINO does not deliver (simulated by the read-back): a load error, never f32
    gated under a bf16 name."""
    from quantgate.backends import openvino
    from quantgate.variants.factory import BuildError

    factory, _ = _factory(tiny_reranker, tmp_path / "cache")
    monkeypatch.setattr(openvino, "runtime_facts", lambda model: {"runtime": "openvino", "inference_precision": "f32"})
    factory.load(VARIANTS["openvino"])  # asked f32, runs f32
    with pytest.raises(BuildError, match="openvino-bf16 built but failed to load: .*asked OpenVINO's CPU plugin for "
                                         "bf16, its compiled model runs f32"):
        factory.load(VARIANTS["openvino-bf16"])


def test_openvino_is_exported_with_f32_weights_whatever_the_models_size(tiny_reranker, tmp_path, monkeypatch):
    """optimum-intel compresses the weights of a model of 1e9 parameters or more to int8 unless told not to. With its
    threshold lowered to 1,000 parameters (so a tiny model stands for a 4B one), a plain export gets int8 weights,
    and the gate's `openvino` still reads back f32 weights from its IR."""
    import openvino as ov
    import optimum.exporters.openvino.__main__ as exporter
    from sentence_transformers import CrossEncoder

    from quantgate.backends.openvino_ir import op_precision

    monkeypatch.setattr(exporter, "_MAX_UNCOMPRESSED_SIZE", 1000)
    plain = CrossEncoder(str(tiny_reranker), backend="openvino", model_kwargs={"export": True})
    plain.save(str(tmp_path / "plain"))
    assert op_precision(ov.Core().read_model(tmp_path / "plain" / openvino.PLAIN))["ops_float_int8_weights"] > 0
    factory, _ = _factory(tiny_reranker, tmp_path / "cache")
    manifest = factory.artifact(VARIANTS["openvino"]).manifest
    precision = op_precision(ov.Core().read_model(factory.artifact(VARIANTS["openvino"]).path / openvino.PLAIN))
    assert precision["ops"] > 0 and precision["ops_int8"] == 0 and precision["ops_float_int8_weights"] == 0
    assert manifest["load"]["weights"] == "f32", manifest
