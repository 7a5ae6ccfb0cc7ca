"""Decoder-based embedders and rerankers (Qwen3, Gemma3, a causal-LM LogitScore reranker) through the gate: every
selected variant ends as a row (a result, or a skip with the library's reason decided up front), the fp32-equivalent
variants agree with the reference, no raw traceback reaches pytest's output, and the reference is the candidate.
The full architecture table is scripts/architectures.py (docs/architectures.md); CI runs this representative subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantgate.backends.support import KNOWN_BROKEN
from quantgate.core import machine
from tests.test_plugin import run_gate

pytestmark = pytest.mark.slow  # gate runs of minutes: CI's fresh-machine part leaves them to the full part

# fp32-equivalent variants must agree with the reference; the others must build, or be skipped with a reason
VARIANTS = "torch-fp32,torch-bf16,onnx,onnx-O2,onnx-qint8-avx512_vnni,openvino,openvino-qint8,inc-int8"
FP32_EQUIVALENT = ("onnx", "onnx-O2", "openvino")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from scripts.tiny_models import build

    root = tmp_path_factory.mktemp("architectures")
    return lambda name: build(name, root / name)


def gate_tiny(model, tmp_path, variants: str = VARIANTS):
    report = tmp_path / "report"
    out = run_gate("-q", "--candidate", str(model), "--variants", variants, "--gate-max-queries", "4",
                   "--gate-top-k", "4", "--gate-no-retrieval", "--gate-calibration-size", "16",
                   "--gate-cache", str(tmp_path / "cache"), "--gate-report", str(report), "-k", "builds or agreement")
    verdict = json.loads((report / "verdict.json").read_text())
    return out, verdict


@pytest.mark.parametrize("name", ["qwen3-embedder", "gemma3-embedder", "qwen3-reranker", "gemma3-reranker",
                                  "qwen3-lm-reranker"])
def test_decoder_models_end_with_a_row_for_every_variant(name, models, tmp_path):
    out, verdict = gate_tiny(models(name), tmp_path)
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
    assert "Traceback (most recent call last)" not in out.stdout, out.stdout[-4000:]
    assert verdict["complete"]
    rows = {**verdict["variants"], **verdict.get("skipped", {})}
    missing = [v for v in VARIANTS.split(",") if v not in rows]
    assert not missing, f"selected variants missing from the verdict: {missing}"
    for variant, why in verdict.get("skipped", {}).items():
        assert variant not in verdict["variants"] and len(why) > 20, (variant, why)
    for variant in FP32_EQUIVALENT:
        entry = verdict["variants"].get(variant)
        if entry is None:  # skipped: the library's reason names its version and the model type
            assert "model type" in verdict["skipped"][variant] or "needs" in verdict["skipped"][variant]
            continue
        assert entry["gates"]["agreement"]["passed"], (variant, entry["failures"])
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert all(f"`{v}`" in summary for v in VARIANTS.split(",")), summary


def test_the_reference_is_the_candidate_and_a_copy_that_is_not_fails(models, tmp_path):
    """transformers 4.57 halves Gemma3's bidirectional sliding_window at every load: a load-save copy runs another
    model. The reference runs the candidate's own files; a saved bf16 copy is refused with the config change."""
    from sentence_transformers import SentenceTransformer

    from quantgate.backends.torch_backend import PROBE

    model = models("gemma3-embedder")
    out, verdict = gate_tiny(model, tmp_path, "torch-fp32,torch-bf16,onnx")
    reference = verdict["variants"]["torch-fp32"]["artifact"]["path"]
    own = SentenceTransformer(str(model), device="cpu").encode(PROBE)
    gated = SentenceTransformer(reference, device="cpu").encode(PROBE)
    assert np.array_equal(own, gated)
    assert verdict["variants"]["onnx"]["gates"]["agreement"]["passed"]  # a correct export agrees with the candidate
    if machine.capability_missing("bf16") is None:
        failures = " ".join(verdict["variants"]["torch-bf16"]["failures"])
        assert "saved copy does not reproduce the candidate" in failures and "sliding_window" in failures, failures


def test_a_causal_lm_reranker_scores_on_fp32_logits(models):
    """sentence-transformers' LogitScore head subtracts the yes/no logits in the model's dtype; the gate's scores
    of a bf16 variant come from fp32 logits (the activation too)."""
    import torch
    from sentence_transformers import CrossEncoder

    from quantgate.core.candidate import upcast_activation

    model = upcast_activation(CrossEncoder(str(models("qwen3-lm-reranker")), device="cpu",
                                           model_kwargs={"torch_dtype": torch.bfloat16}))
    seen = []
    heads = [m for m in model.modules() if type(m).__name__ == "LogitScore"]
    assert len(heads) == 1
    heads[0].register_forward_hook(lambda module, args, output: seen.append(output["scores"].dtype))
    scores = model.predict([("a question", "a passage"), ("another", "text")])
    assert seen == [torch.float32] and np.isfinite(scores).all()


@pytest.mark.parametrize("index", range(len(KNOWN_BROKEN)))
def test_each_known_broken_entry_is_still_broken(index, models, tmp_path):
    """A table entry is a claim about a library version: while that version is installed, building the variant
    without the skip must still fail; when a newer library builds it, this test says to remove the entry."""
    from quantgate.backends.common import BuildContext
    from quantgate.backends.support import library_version, model_info
    from quantgate.core.cache import Artifact
    from quantgate.core.candidate import resolve
    from quantgate.variants.registry import VARIANTS as REGISTRY
    from quantgate.variants.registry import backend_of

    entry = KNOWN_BROKEN[index]
    if library_version(entry.package) not in entry.versions.split(","):
        pytest.fail(f"{entry.package} is {library_version(entry.package)}, the entry says {entry.versions}: "
                    "measure again and update or remove the entry")
    family = "gemma3" if "gemma3_text" in entry.model_types else "qwen3"
    name = "qwen3-lm-reranker" if entry.tasks else f"{family}-embedder"
    candidate = resolve(str(models(name)))
    assert entry.applies(entry.variants.rstrip("*") or entry.variants, model_info(candidate.path, candidate.kind))
    spec = REGISTRY[entry.variants.rstrip("*")]
    dependency = None
    if spec.depends_on:  # built from its dependency's artifact, built here first
        base = REGISTRY[spec.depends_on]
        (tmp_path / "base").mkdir()
        info = backend_of(base).build(BuildContext(candidate, base), tmp_path / "base")
        dependency = Artifact(base.id, tmp_path / "base", {"load": info, "files": {}}, True)
    calibration = ([("a query", "a passage"), ("q", "p")] if candidate.kind == "reranker" else ["a text", "another"])
    ctx = BuildContext(candidate, spec, calibration=calibration if spec.calibrated else None, dependency=dependency)
    out = tmp_path / "artifact"
    out.mkdir()
    with pytest.raises(Exception) as raised:  # the signature below says which failure
        info = backend_of(spec).build(ctx, out)
        model = backend_of(spec).load(ctx, Artifact(spec.id, out, {"load": info, "files": {}}, True))
        model.predict([("a", "b")]) if candidate.kind == "reranker" else model.encode(["a"])
    assert entry.signature in str(raised.value), f"{entry.variants} on {name} now fails otherwise: {raised.value}"
