"""A backend added from outside the package is one module and one call each (quantgate.backends.register,
quantgate.variants.registry.register): a test's toy backend, fp32 torch with every Linear weight moved by a fixed
seeded perturbation, registered in a conftest.py alone, goes through build, agreement, batch and quality like a
packaged variant."""

import json
from pathlib import Path

import pytest

from quantgate.backends import FAMILIES
from quantgate.variants.registry import VARIANTS

pytest_plugins = ["pytester"]

TOY_BACKEND = '''
"""fp32 torch with every Linear weight moved by 0.1% of its spread (seeded): a variant that is not the reference."""
from quantgate.backends.common import builds_any, estimate, load_st, no_skip, release
from quantgate.backends.mutant import add_noise
from quantgate.backends.torch_backend import WEIGHT_FILES, runtime_options

skip_reason = no_skip
model_skip = builds_any


def memory_estimate(spec, fp32_weight_bytes):
    return estimate(spec, fp32_weight_bytes, build=2.6, load=1.6)


def build(ctx, out):
    model = load_st(ctx, ctx.candidate.path, "torch")
    add_noise(model, 0.001, seed=1)
    model.save(str(out), safe_serialization=True)
    return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": "float32"}


def load(ctx, artifact):
    return load_st(ctx, artifact.path, "torch")
'''

CONFTEST = '''
from quantgate.backends import register
from quantgate.core.spec import VariantSpec
from quantgate.variants.registry import register as register_variant

register("toy", "toy_backend")
register_variant(VariantSpec("toy", "toy", "fp32", "fp32 torch, weights moved by a fixed seeded perturbation",
                             (("perturbation", 0.001),), default=False))
'''


@pytest.fixture(scope="module", autouse=True)
def libraries_loaded_once(native_libraries):
    """See tests.conftest.native_libraries: pytester's in-process runs need them imported first."""


def test_a_backend_registered_from_a_conftest_is_gated_end_to_end(pytester, tmp_path):
    pytester.makepyfile(toy_backend=TOY_BACKEND, conftest=CONFTEST)
    pytester.syspathinsert()
    try:
        result = pytester.runpytest_inprocess(
            "--pyargs", "quantgate.gates", "--variants", "torch-fp32,toy", "-k", "not speed",
            "--gate-embedding-formats", "none", "--gate-cache", str(tmp_path / "cache"), "--gate-report", "report",
            "--gate-history", "history", "--benchmark-storage", f"file://{pytester.path / 'bench'}")
    finally:
        FAMILIES.pop("toy", None)
        VARIANTS.pop("toy", None)
    verdict = json.loads((Path(pytester.path) / "report" / "verdict.json").read_text())
    toy = verdict["variants"].get("toy")
    assert toy is not None, result.outlines[-30:]
    assert {"build", "agreement", "batch", "quality"} <= set(toy["gates"]), toy["gates"].keys()
    cosine = toy["gates"]["agreement"]["results"][0]["metrics"]["cosine_min"]
    assert 0.99 < cosine < 1.0  # moved, and still the same model
    assert toy["decision"] in ("pass", "inconclusive") and not toy["failures"], toy["failures"]
    assert result.ret in (0, 1) and "toy" not in FAMILIES and "toy" not in VARIANTS
