"""torch-fp8 off the GPU: skipped with the reason before anything loads, and the compiled model's `to` guard."""

from __future__ import annotations

import types

import pytest

from quantgate.backends import torchao_fp8
from quantgate.variants.registry import VARIANTS

torch = pytest.importorskip("torch")
SPEC = VARIANTS["torch-fp8"]


def test_skipped_on_the_cpu_with_the_reason():
    reason = torchao_fp8.skip_reason(SPEC, "cpu")
    assert reason and "compute capability 8.9" in reason and "this run's device is cpu" in reason


def test_skipped_on_a_gpu_before_ada_with_its_name_and_capability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA A100-SXM4-80GB")
    reason = torchao_fp8.skip_reason(SPEC, "cuda")
    assert reason == ("torch-fp8 needs float8 tensor cores (compute capability 8.9 or later: Ada, Hopper); "
                      "NVIDIA A100-SXM4-80GB is 8.0")


def test_skipped_on_hopper_without_torchao(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(torchao_fp8.importlib.util, "find_spec", lambda name: None)
    assert torchao_fp8.skip_reason(SPEC, "cuda") == "torch-fp8 needs torchao (pip install torchao)"
    monkeypatch.setattr(torchao_fp8.importlib.util, "find_spec", lambda name: object())
    assert torchao_fp8.skip_reason(SPEC, "cuda") is None


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    @property
    def device(self):
        return self.linear.weight.device


def test_the_compiled_models_to_is_a_no_op_onto_its_own_device(monkeypatch):
    """sentence-transformers calls `to(device)` in every predict/encode; on the compiled float8 model `_apply`
    cannot swap the parameters, so a move to where the model is must not reach it. Any other move still does."""
    model = Tiny()
    applied = []
    monkeypatch.setattr(Tiny, "_apply", lambda self, fn, *a, **k: applied.append(fn) or self)
    model.to = types.MethodType(torchao_fp8._to_unless_there, model)
    for same in ("cpu", torch.device("cpu"), None):
        assert (model.to(same) if same is not None else model.to()) is model
    assert applied == []
    model.to(torch.bfloat16)
    model.to("meta")
    assert len(applied) == 2


def test_the_repeated_layers_are_compiled_each_and_nothing_else(monkeypatch, tiny_reranker):
    """Regional compilation: the model's transformer layers (the longest list of like modules) are compiled one by
    one; a model with no repeated blocks is left to the whole-model compile."""
    from sentence_transformers import CrossEncoder

    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append((type(self).__name__, kw)))
    model = CrossEncoder(str(tiny_reranker), device="cpu")
    layers = [m for m in model.modules() if type(m).__name__.endswith("Layer")]
    assert torchao_fp8.compile_regions(model) == len(layers) >= 2
    assert compiled == [(type(layers[0]).__name__, {"dynamic": True})] * len(layers)
    assert torchao_fp8.compile_regions(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())) == 0


@pytest.mark.parametrize("kind", ["reranker", "embedder"])
def test_torch_fp8_is_judged_with_the_limits_of_static_int8(kind):
    """fp8's error is of int8's class (thresholds.toml says why): not the fp32 defaults, which a working fp8 model
    crosses (random-weight XLM-R-large shape on an H200: mean abs 0.0054 against the default 0.005)."""
    from quantgate.config import PACKAGED_THRESHOLDS, load_thresholds

    thresholds = load_thresholds(PACKAGED_THRESHOLDS)
    assert thresholds.agreement_limits("torch-fp8", kind) == thresholds.agreement_limits("openvino-qint8", kind)
