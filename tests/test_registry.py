import subprocess
import sys

import pytest

from quantgate.config import load_thresholds
from quantgate.errors import QuantgateUsageError
from quantgate.variants.registry import (
    REFERENCE_ID,
    VARIANTS,
    Registry,
    UnknownVariantError,
    VariantSpec,
    backend_of,
    checked,
    select,
    untuned,
)
from tests.conftest import ROOT

SEED_IDS = [
    "torch-fp32", "torch-fp16", "torch-bf16", "onnx", "onnx-O1", "onnx-O2", "onnx-O3", "onnx-O4",
    "onnx-qint8-arm64", "onnx-qint8-avx2", "onnx-qint8-avx512", "onnx-qint8-avx512_vnni",
    "openvino", "openvino-qint8", "inc-int8",
]
TUNED_IDS = ["openvino-qint8-ac", "inc-int8-autotune"]  # accuracy-controlled int8
DEPLOYED_IDS = ["openvino-bf16", "openvino-qint8-bf16"]  # OpenVINO at the CPU plugin's default precision
WEIGHT_ONLY_IDS = ["onnx-int4-wo", "openvino-int8-wo", "openvino-int4-wo"]  # what teams publish for decoder models
ENGINE_IDS = ["ovgenai", "ovgenai-int8-wo", "ovgenai-int4-wo"]  # OpenVINO GenAI's pipelines over those IRs
GPU_IDS = ["torch-fp8"]  # float8 on CUDA 8.9+: runs torch-bf16's files
OPT_IN_IDS = [*WEIGHT_ONLY_IDS, *ENGINE_IDS]  # gated when named (--variants), not in a plain run's matrix
ALL_IDS = [*SEED_IDS[:3], *GPU_IDS, *SEED_IDS[3:12], "onnx-int4-wo", "openvino", "openvino-bf16", "openvino-qint8",
           "openvino-qint8-bf16",
           "openvino-qint8-ac", "openvino-int8-wo", "openvino-int4-wo", *ENGINE_IDS, "inc-int8", "inc-int8-autotune"]
DEFAULT_IDS = [vid for vid in ALL_IDS if vid not in OPT_IN_IDS]


def test_registry_holds_the_seed_ids_and_the_tuned_ones_in_order():
    assert list(VARIANTS) == ALL_IDS
    assert set(SEED_IDS) | set(TUNED_IDS) | set(DEPLOYED_IDS) | set(WEIGHT_ONLY_IDS) | set(ENGINE_IDS) | set(GPU_IDS) \
        == set(ALL_IDS)
    assert [vid for vid, spec in VARIANTS.items() if spec.tuned] == TUNED_IDS
    assert [vid for vid, spec in VARIANTS.items() if spec.artifact_of] == [*GPU_IDS, *DEPLOYED_IDS]
    assert REFERENCE_ID == "torch-fp32" and VARIANTS[REFERENCE_ID].precision == "fp32"


def test_every_spec_is_consistent():
    for vid, spec in VARIANTS.items():
        assert spec.id == vid
        assert callable(backend_of(spec).build) and callable(backend_of(spec).load)
        if spec.depends_on:
            chain, source = [vid], spec  # built from another variant's artifact, which may be built from a third
            while source.depends_on:
                assert source.depends_on in VARIANTS and source.depends_on not in chain, chain
                chain.append(source.depends_on)
                source = VARIANTS[source.depends_on]
        if spec.artifact_of:  # the same files, other runtime options: a family that loads them, no build of its own
            source = VARIANTS[spec.artifact_of]
            assert source.family in (spec.family, getattr(backend_of(spec), "RUNS_ARTIFACTS_OF", None))
            assert not source.artifact_of and not spec.depends_on
            assert spec.opts != source.opts
        assert spec.description


def test_every_threshold_override_names_a_variant():
    thresholds = load_thresholds(ROOT / "thresholds.toml")
    assert thresholds.variants, "thresholds.toml has per-variant overrides"
    for pattern in thresholds.variants:
        assert select([pattern]), f"thresholds.toml override {pattern!r} matches no variant"


def test_globs_select_in_registry_order():
    assert [s.id for s in select(["onnx-qint8-*"])] == SEED_IDS[8:12]
    assert [s.id for s in select(["openvino*", "torch-fp32"])] == ["torch-fp32", "openvino", "openvino-bf16",
                                                                   "openvino-qint8", "openvino-qint8-bf16",
                                                                   "openvino-qint8-ac", "openvino-int8-wo",
                                                                   "openvino-int4-wo"]
    assert [s.id for s in select(None)] == DEFAULT_IDS  # the opt-in variants only when named
    assert [s.id for s in select(["*-wo", "ovgenai*"])] == OPT_IN_IDS


def test_unknown_variant_suggests_the_closest():
    with pytest.raises(UnknownVariantError, match=r"Did you mean 'onnx-O2'"):
        select(["onx-O2"])
    with pytest.raises(UnknownVariantError, match="Known variants"):
        select(["tensorrt-*"])


def test_register_refuses_a_duplicate_id():
    registry = Registry()
    with pytest.raises(QuantgateUsageError, match="already taken"):
        registry.register(VariantSpec("onnx", "onnx", "fp32", "again"))
    registry.register(VariantSpec("mine", "external", "int8", "x", (("path", "/x"),)))
    assert "mine" in registry.variants and "mine" not in VARIANTS


def test_key_material_ignores_the_description_only():
    a = VariantSpec("a", "onnx", "fp32", "one", (("optimize", "O1"),))
    b = VariantSpec("a", "onnx", "fp32", "two", (("optimize", "O1"),))
    c = VariantSpec("a", "onnx", "fp32", "one", (("optimize", "O2"),))
    assert a.key_material() == b.key_material() != c.key_material()


def test_import_quantgate_loads_no_heavy_library():
    code = (
        "import sys, quantgate, quantgate.variants.registry, quantgate.config, quantgate.session.core, "
        "quantgate.variants.factory, quantgate.core.cache, quantgate.evaluation.data, "
        "quantgate.core.candidate\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'openvino', 'nncf', 'neural_compressor', 'optimum', "
        "'sentence_transformers', 'mteb') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_every_backend_family_satisfies_the_contract():
    """One module per family (quantgate.backends.FAMILIES), each with the whole Backend contract; its
    skip reason and memory estimate answer for every variant of the family."""
    import inspect

    from quantgate.backends import FAMILIES, Backend, backend, ran_with, weight_patterns
    from quantgate.core import machine
    from quantgate.core.memory import Estimate

    for family in FAMILIES:
        module = backend(family)
        assert isinstance(module, Backend), f"{family}: {module.__name__} misses part of the Backend contract"
        for name in ("build", "load", "release", "skip_reason", "runtime_options", "memory_estimate"):
            expected = len(inspect.signature(getattr(Backend, name)).parameters) - 1  # less self
            assert len(inspect.signature(getattr(module, name)).parameters) == expected, f"{family}.{name}"
        assert module.WEIGHT_FILES and all(isinstance(p, str) for p in module.WEIGHT_FILES)
        if hasattr(module, "runtime_facts"):  # a runtime of its own: named, read back and described by its module
            assert isinstance(module.RUNTIME, str) and callable(module.ran_with), family
    runtimes = {backend(f).RUNTIME for f in FAMILIES if hasattr(backend(f), "runtime_facts")}
    assert runtimes == {"torch", "torch-float8", "onnxruntime", "openvino", "openvino-genai", "endpoint"}
    assert ran_with({"runtime": "openvino", "inference_precision": "bf16"}) == "OpenVINO bf16"
    assert ran_with({"runtime": "something else"}) == "" and ran_with({}) == ""
    for spec in VARIANTS.values():  # every requirement a spec names is answered by its backend or by machine
        for requirement in spec.requires:
            own = getattr(backend_of(spec), "REQUIREMENTS", {}).get(requirement)
            assert own is not None or requirement in ("cuda", "fp16", "bf16") or requirement.startswith("cpu:"), spec.id
            assert own is None or requirement not in ("cuda", "fp16", "bf16")
    for own in ("cpu-bf16", "ort-cuda"):  # a backend's own requirement is answered in its module only
        with pytest.raises(ValueError, match="unknown machine requirement"):
            machine.capability_missing(own)
    for spec in VARIANTS.values():
        for device in ("cpu", "cuda"):
            why = backend_of(spec).skip_reason(spec, device)
            assert why is None or why.startswith(spec.id)
        estimate = backend_of(spec).memory_estimate(spec, 100 * 2**20)
        assert isinstance(estimate, Estimate) and 0 < estimate.load and estimate.needed(cached=False) >= estimate.load
    assert {"*.onnx", "*.xml", "*.safetensors", "inc/*"} <= set(weight_patterns())
    for spec in VARIANTS.values():
        if spec.family in ("openvino", "inc") or (spec.family == "onnx" and spec.precision == "int8"):
            assert "CPU only" in backend_of(spec).skip_reason(spec, "cuda")


def test_each_family_module_declares_its_variants_time_multiples_and_libraries():
    """A backend's story in its module: the registry is the families' VARIANTS in FAMILIES' order, the time guard's
    cold-run multiples and the libraries the run names are read from the modules too."""
    from quantgate.backends import FAMILIES, backend, libraries
    from quantgate.core import machine
    from quantgate.variants.timeguard import DEFAULT_MULTIPLES

    declared = [spec for family in FAMILIES for spec in getattr(backend(family), "VARIANTS", ())]
    assert [s.id for s in declared] == list(VARIANTS) and declared[0].id == REFERENCE_ID
    for family in FAMILIES:
        module = backend(family)
        own = {s.id for s in getattr(module, "VARIANTS", ())}
        assert all(s.family == family for s in getattr(module, "VARIANTS", ())), family
        assert set(getattr(module, "TIME_MULTIPLES", {})) <= own, family  # a module times only its own variants
    assert set(DEFAULT_MULTIPLES) == {vid for f in FAMILIES for vid in getattr(backend(f), "TIME_MULTIPLES", {})}
    assert libraries()[:len(machine.LIBRARIES)] == machine.LIBRARIES and {"onnxruntime", "openvino"} <= set(libraries())


def test_a_new_family_is_refused_until_it_is_in_the_map():
    spec = VariantSpec("trt", "tensorrt", "fp16", "not a family yet")  # a spec knows no backend: the registry checks
    for refuse in (checked, backend_of, Registry().register):
        with pytest.raises(ValueError, match="unknown family 'tensorrt'"):
            refuse(spec)


def test_each_accuracy_controlled_variant_starts_from_its_plain_int8_variant():
    # the time guard counts a tuned build's validation passes at the rate its untuned variant scored in the run
    assert {v.id: untuned(v).id for v in VARIANTS.values() if v.tuned} == {
        "openvino-qint8-ac": "openvino-qint8", "inc-int8-autotune": "inc-int8"}
    assert untuned(VARIANTS["openvino-qint8"]) is None  # only a tuned variant has one
