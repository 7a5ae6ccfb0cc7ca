"""One module per backend family, each satisfying the `Backend` contract below: `build(ctx, out_dir) ->
load_info`, `load(ctx, artifact) -> model` (a sentence-transformers CrossEncoder or SentenceTransformer,
so every variant exposes `predict(pairs, batch_size=)` or `encode(texts, batch_size=)`), `release`,
`skip_reason`, `model_skip`, `runtime_options`, `WEIGHT_FILES` and `memory_estimate`. A family that runs on a
runtime of its own also says what a loaded model runs with: `RUNTIME` (its name in the verdict), `runtime_facts`
(read back from the runtime) and `ran_with` (how the report names it). The module also declares its variants
(`VARIANTS`, VariantSpecs: the registry concatenates them), the time guard's cold-run multiples (`TIME_MULTIPLES`)
and the libraries the run names and keys artifacts by (`LIBRARIES`). A new backend is one module and one line in
FAMILIES; tests/test_backends.py checks every family against the contract.
Heavy libraries are imported inside these functions only."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from quantgate.core import machine

FAMILIES = {  # the matrix's order (each module's VARIANTS, in turn); the reference's family first
    "torch": "quantgate.backends.torch_backend",
    "torchao": "quantgate.backends.torchao_fp8",
    "onnx": "quantgate.backends.onnx",
    "openvino": "quantgate.backends.openvino",
    "ovgenai": "quantgate.backends.ovgenai",
    "inc": "quantgate.backends.inc",
    "external": "quantgate.backends.external",
    "endpoint": "quantgate.backends.endpoint",
    "mutant": "quantgate.backends.mutant",
}


@runtime_checkable
class Backend(Protocol):
    """What a backend module exposes (modules satisfy runtime-checkable Protocols by their attributes)."""

    WEIGHT_FILES: tuple[str, ...]  # glob patterns (artifact-relative) of weight files: publish never mixes them

    def build(self, ctx: Any, out: Path) -> dict[str, Any]: ...

    def load(self, ctx: Any, artifact: Any) -> Any: ...

    def release(self, model: Any) -> None: ...

    def skip_reason(self, spec: Any, device: str) -> str | None: ...

    def model_skip(self, spec: Any, model: Any) -> str | None: ...  # model: quantgate.backends.support.ModelInfo

    def runtime_options(self, ctx: Any) -> dict[str, Any]: ...

    def memory_estimate(self, spec: Any, fp32_weight_bytes: int) -> Any: ...  # quantgate.core.memory.Estimate


def register(family: str, module: str) -> None:
    """A backend family from outside the package (a team's own, or a test's): `module` is importable and satisfies
    `Backend`; its variants then go into quantgate.variants.registry.register. One module and this one call."""
    if family in FAMILIES:
        raise ValueError(f"backend family {family!r} is already registered ({FAMILIES[family]})")
    loaded = importlib.import_module(module)
    if not isinstance(loaded, Backend):
        wanted = ["WEIGHT_FILES", *(name for name in vars(Backend) if not name.startswith("_"))]
        raise TypeError(f"{module} is not a backend: it lacks {', '.join(n for n in wanted if not hasattr(loaded, n))}")
    FAMILIES[family] = module


def backend(family: str) -> Backend:
    """The module of a family (imported on first use: importing it imports no heavy library)."""
    return importlib.import_module(FAMILIES[family])  # type: ignore[return-value]


def runtime_facts(model) -> dict[str, Any]:
    """What a loaded model runs with, from the family module that knows its runtime ({} when none does). A family
    that runs another's models (RUNS_ARTIFACTS_OF: torchao's float8 copy is a torch model too) is asked first."""
    for family in sorted(FAMILIES, key=lambda f: getattr(backend(f), "RUNS_ARTIFACTS_OF", None) is None):
        read = getattr(backend(family), "runtime_facts", None)
        if read is not None and (facts := read(model)) is not None:
            return facts
    return {}


def ran_with(runtime: dict[str, Any]) -> str:
    """'OpenVINO bf16' / 'torch bfloat16 cuda:0' / 'ONNX Runtime CPUExecutionProvider', by the runtime's family
    module ("" for facts no family module wrote)."""
    name = runtime.get("runtime")
    module = next((m for m in map(backend, FAMILIES) if name and getattr(m, "RUNTIME", None) == name), None)
    return module.ran_with(runtime) if module is not None else ""


def weight_patterns() -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for family in FAMILIES for p in backend(family).WEIGHT_FILES))


def libraries() -> tuple[str, ...]:
    """The libraries a run names in its header and verdict and keys every artifact by: the gate's own
    (quantgate.core.machine.LIBRARIES), then each family's (its module's LIBRARIES)."""
    return tuple(dict.fromkeys((*machine.LIBRARIES,
                                *(name for family in FAMILIES for name in getattr(backend(family), "LIBRARIES", ())))))
