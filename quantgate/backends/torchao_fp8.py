"""torch-fp8: torchao's float8 dynamic quantization of the linear layers of the `torch-bf16` copy, compiled.

Float8 matmuls need a CUDA GPU of compute capability 8.9 or later (Ada, Hopper and after); anywhere else the variant
is skipped with the reason before anything is loaded. Activations are scaled per row at run time and weights per
output channel (torchao's `Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())`, what its docs give for
inference on Hopper). On an H200, the random-weight XLM-R-large-shape reranker (335M) at batch 256 ran 3,860 items/s
compiled in float8 against 3,197 compiled in bf16 and 294 in fp32, max abs difference after sigmoid 0.028: without
`torch.compile` the quantize and scale kernels run one by one and float8 is slower than bf16, so the model's
repeated layers are compiled at load (`compile_regions`, with dynamic shapes: each batch has its own length) and the
compile time is reported as the variant's (the 3,860 figure was the whole model compiled; compiled by region, the
24 layers took 92 s on an H200 and MiniLM's 6 took 14-22 s on an H100). A linear layer whose sides are not
multiples of 16 (a one-logit classification head) stays in bf16: `_scaled_mm` takes no other shapes. Under
`torch.inference_mode` the compiled float8 graph does not run (its tensor subclasses are not inference tensors), so
predict/encode run under `no_grad` instead.
"""

from __future__ import annotations

import importlib.util
import time
import types
from typing import Any

from quantgate.backends import torch_backend
from quantgate.backends.common import BuildContext, builds_any, estimate
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec

RUNTIME = "torch-float8"
WEIGHT_FILES = torch_backend.WEIGHT_FILES
MIN_CAPABILITY = (8, 9)
RUNS_ARTIFACTS_OF = "torch"  # loads the torch family's files (the torch-bf16 copy)
model_skip = builds_any
release = torch_backend.release
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate", "RUNTIME", "runtime_facts", "ran_with"]


def skip_reason(spec: VariantSpec, device: str) -> str | None:
    if device != "cuda":
        return (f"{spec.id} runs float8 matmuls on a CUDA GPU of compute capability 8.9 or later (Ada, Hopper); "
                f"this run's device is {device}")
    import torch

    if not torch.cuda.is_available():
        return f"{spec.id} needs a CUDA GPU (none on this machine)"
    capability = torch.cuda.get_device_capability()
    if capability < MIN_CAPABILITY:
        return (f"{spec.id} needs float8 tensor cores (compute capability 8.9 or later: Ada, Hopper); "
                f"{torch.cuda.get_device_name()} is {capability[0]}.{capability[1]}")
    if importlib.util.find_spec("torchao") is None:
        return f"{spec.id} needs torchao (pip install torchao)"
    return None


def build(ctx: BuildContext, out) -> dict[str, Any]:
    """Never called: the variant runs the `torch-bf16` artifact (its spec's artifact_of)."""
    raise RuntimeError(f"{ctx.spec.id} has no artifact of its own: it runs torch-bf16's")


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    return {"float8": "dynamic activations, per-row scales (torchao)", "compile": "repeated layers, dynamic shapes"}


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    return estimate(spec, fp32_weight_bytes, build=0.0, load=1.0)  # the bf16 copy, then its float8 weights


def _quantizable(module, fqn: str) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0


def load(ctx: BuildContext, artifact: Artifact):
    return quantize(torch_backend.load(ctx, artifact), ctx.candidate.kind)


def quantize(model, kind: str, regional: bool = True):
    """A bf16 model on CUDA with its linear layers quantized to float8 in place, compiled, and run once on probe
    inputs so the compile happens here (its seconds are the variant's `compile_seconds`), not in the first scored
    batch. scripts/gpu_scoring.py measures the same function (`regional=False`: the whole model compiled)."""
    import torch

    float8_linears(model)
    if not (regional and compile_regions(model)):
        model.compile(dynamic=True)
    for name in ("predict", "encode"):
        method = getattr(type(model), name, None)
        plain = getattr(method, "__wrapped__", None)  # the method under its @torch.inference_mode()
        if plain is not None:
            setattr(model, name, types.MethodType(torch.no_grad()(plain), model))
    model.quantgate_grad_mode = torch.no_grad
    model.to = types.MethodType(_to_unless_there, model)
    started = time.perf_counter()
    torch_backend._probe(model, kind)
    torch.cuda.synchronize()
    model.quantgate_compile_seconds = round(time.perf_counter() - started, 2)
    return model


def float8_linears(model) -> None:
    """The model's linear layers whose sides are multiples of 16 quantized to float8 in place (torchao, per-row
    scales), nothing compiled: `quantize`'s first step, and scripts/fp8_batch.py's eager float8."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), filter_fn=_quantizable)


def compile_regions(model) -> int:
    """Compile the model's repeated blocks (the longest `ModuleList` whose modules share one class: its transformer
    layers) each in place, with dynamic shapes, leaving the rest eager: PyTorch's regional compilation, which
    compiles one layer's code and reuses it for the others. On one H100 the whole XLM-R-large-shape float8 model,
    compiled with dynamic shapes, took about 4.5 minutes to its first scores. Returns how many blocks were compiled
    (0: no repeated blocks found)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1
             and len({type(block) for block in m}) == 1]
    if not lists:
        return 0
    blocks = max(lists, key=len)
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)


def _to_unless_there(model, *args, **kwargs):
    """`Module.to` that returns the model as it is when asked for the device it is on and no dtype. On one H100 a
    second `predict()` of the compiled float8 reranker raised "_apply(): Couldn't swap Linear.weight":
    sentence-transformers moves the model to its device on every call, `_apply` swaps a tensor subclass's parameters
    even onto the same device, and the compiled graph's guards hold weak references that forbid the swap."""
    import torch

    device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
    here = model.device
    if dtype is None and (device is None or (device.type == here.type and device.index in (None, here.index))):
        return model
    return type(model).to(model, *args, **kwargs)


def runtime_facts(model) -> dict[str, Any] | None:
    """A model this module loaded (asked before the torch family's, which would read its bf16 parameters)."""
    facts = torch_backend.runtime_facts(model) if hasattr(model, "quantgate_compile_seconds") else None
    if facts is None:
        return None
    return {**facts, "runtime": RUNTIME, "dtype": "float8_e4m3fn linear layers, bfloat16 the rest",
            "compile_seconds": model.quantgate_compile_seconds}


def ran_with(runtime: dict[str, Any]) -> str:
    return f"torch float8 (torchao) {runtime['device']}, compiled"


# this family's variants, in the matrix's order (quantgate.variants.registry concatenates the families')
VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec("torch-fp8", "torchao", "fp8", "PyTorch on CUDA (compute capability 8.9+), the torch-bf16 copy "
                "with its linear layers in float8 (torchao dynamic activations, per-row scales), compiled",
                (("float8", "dynamic-rowwise"), ("compile", "regional-dynamic")), requires=("cuda",),
                artifact_of="torch-bf16"),
)
