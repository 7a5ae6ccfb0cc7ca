"""The variant registry: variant id -> frozen VariantSpec, builders resolved lazily.

Heavy libraries (onnxruntime, openvino, nncf, neural_compressor) are imported by the
builders only, so importing this module costs nothing.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field

from quantgate.backends import FAMILIES, Backend, backend
from quantgate.core.spec import REFERENCE_ID, VariantSpec
from quantgate.errors import QuantgateUsageError

__all__ = ["REFERENCE_ID", "VARIANTS", "Registry", "UnknownVariantError", "VariantSpec", "backend_of", "register",
           "select"]


class UnknownVariantError(QuantgateUsageError):
    """A variant id or pattern that names nothing in the registry."""


def checked(spec: VariantSpec) -> VariantSpec:
    """`spec` when its family is a registered backend (quantgate.backends.FAMILIES), else a ValueError naming them."""
    if spec.family not in FAMILIES:
        raise ValueError(f"variant {spec.id!r}: unknown family {spec.family!r}; known: {sorted(FAMILIES)}")
    return spec


def backend_of(spec: VariantSpec) -> Backend:
    """The family's module (quantgate.backends): build, load, release, skip reason, memory estimate."""
    return backend(checked(spec).family)


def _onnx_quant(config: str, note: str) -> VariantSpec:
    return VariantSpec(
        id=f"onnx-qint8-{config}",
        family="onnx",
        precision="int8",
        description=f"ONNX Runtime dynamic int8 (Optimum AutoQuantizationConfig.{config}, is_static=False){note}",
        options=(("quantize", config),),
        depends_on="onnx",
    )


def _onnx_opt(level: str, what: str, requires: tuple[str, ...] = ()) -> VariantSpec:
    return VariantSpec(
        id=f"onnx-{level}",
        family="onnx",
        precision="fp16" if level == "O4" else "fp32",
        description=f"ONNX Runtime, Optimum {level}: {what}",
        options=(("optimize", level),),
        requires=requires,
        depends_on="onnx",
    )


def _openvino_wo(bits: int, how: str) -> VariantSpec:
    return VariantSpec(
        id=f"openvino-int{bits}-wo",
        family="openvino",
        precision=f"int{bits}-wo",
        description=f"OpenVINO weight-only int{bits} (NNCF compress_weights through optimum-intel's "
                    f"OVWeightQuantizationConfig, asymmetric, {how}): weights stored in int{bits}, activations f32; "
                    "what teams publish for 0.5B+ decoder models",
        options=(("quantize", "weights"), ("bits", bits), ("inference_precision", "f32")),
        depends_on="openvino",
        default=False,
    )


def _ovgenai(source: str) -> VariantSpec:
    weights = source.removeprefix("openvino").removeprefix("-") or "f32"
    return VariantSpec(
        id="ovgenai" + source.removeprefix("openvino"),
        family="ovgenai",
        precision=weights if weights != "f32" else "fp32",
        description=f"OpenVINO GenAI's TextEmbeddingPipeline (embedders) or TextRerankPipeline (rerankers) over the "
                    f"`{source}` IR ({weights} weights) and its tokenizer converted by openvino-tokenizers: the "
                    "engine's own tokenization, pooling and instructions",
        depends_on=source,
        default=False,
    )


VARIANTS: dict[str, VariantSpec] = {
    spec.id: checked(spec)
    for spec in (
        VariantSpec(REFERENCE_ID, "torch", "fp32", "PyTorch fp32: the reference", (("dtype", "float32"),)),
        VariantSpec("torch-fp16", "torch", "fp16", "PyTorch, weights and compute in float16", (("dtype", "float16"),),
                    requires=("fp16",)),
        VariantSpec("torch-bf16", "torch", "bf16", "PyTorch, weights and compute in bfloat16", (("dtype", "bfloat16"),),
                    requires=("bf16",)),
        VariantSpec("torch-fp8", "torchao", "fp8", "PyTorch on CUDA (compute capability 8.9+), the torch-bf16 copy "
                    "with its linear layers in float8 (torchao dynamic activations, per-row scales), compiled",
                    (("float8", "dynamic-rowwise"), ("compile", "dynamic")), requires=("cuda",),
                    artifact_of="torch-bf16"),
        VariantSpec("onnx", "onnx", "fp32", "ONNX Runtime fp32, exported by Optimum"),
        _onnx_opt("O1", "basic general graph optimizations"),
        _onnx_opt("O2", "O1 + extended optimizations and transformer fusions"),
        _onnx_opt("O3", "O2 + GELU approximation"),
        _onnx_opt("O4", "O3 + fp16 mixed precision (CUDA only)", requires=("cuda", "ort-cuda")),
        _onnx_quant("arm64", " (per-channel, made for ARM64 NEON)"),
        _onnx_quant("avx2", " (uint8 activations, made for AVX2)"),
        _onnx_quant("avx512", " (made for AVX-512)"),
        _onnx_quant("avx512_vnni", " (made for AVX-512 VNNI)"),
        VariantSpec("onnx-int4-wo", "onnx", "int4-wo", "ONNX Runtime weight-only int4 (MatMulNBitsQuantizer: each "
                    "MatMul with a constant weight becomes MatMulNBits, int4 blocks of 32, asymmetric); activations "
                    "float", (("quantize", "weights"), ("bits", 4), ("block_size", 32)), depends_on="onnx",
                    default=False),
        VariantSpec("openvino", "openvino", "fp32", "OpenVINO IR, exported by optimum-intel, run in f32 "
                    "(INFERENCE_PRECISION_HINT=f32: the CPU plugin's default is bf16 where the CPU has it)",
                    (("inference_precision", "f32"), ("weights", "f32"))),
        VariantSpec("openvino-bf16", "openvino", "bf16", "OpenVINO IR (the `openvino` artifact) at the CPU plugin's "
                    "bf16 inference precision: what backend=\"openvino\" runs by default on a CPU with AVX512-BF16/AMX",
                    (("inference_precision", "bf16"),), requires=("cpu-bf16",), artifact_of="openvino"),
        VariantSpec(
            "openvino-qint8",
            "openvino",
            "int8",
            "OpenVINO static int8 (optimum-intel OVQuantizer / NNCF, OVQuantizationConfig defaults), "
            "calibrated on local calibration inputs; non-quantized ops in f32",
            (("quantize", "static"), ("inference_precision", "f32")),
            calibrated=True,
            depends_on="openvino",
        ),
        VariantSpec(
            "openvino-qint8-bf16",
            "openvino",
            "int8",
            "The `openvino-qint8` IR with its non-quantized ops at the CPU plugin's bf16 inference precision: "
            "what a plain load of that IR runs by default on a CPU with AVX512-BF16/AMX",
            (("quantize", "static"), ("inference_precision", "bf16")),
            requires=("cpu-bf16",),
            artifact_of="openvino-qint8",
        ),
        VariantSpec(
            "openvino-qint8-ac",
            "openvino",
            "int8",
            "OpenVINO int8 with accuracy control (NNCF quantize_with_accuracy_control): operations that cost "
            "quality go back to f32 activations until the relative MAP loss on a held-out validation split is "
            "within the quality limit (their SmoothQuant-scaled weights stay int8); same calibration and settings "
            "as openvino-qint8",
            (("quantize", "static"), ("accuracy_control", "nncf"), ("restore", "smoothing-aware"),
             ("inference_precision", "f32")),
            calibrated=True,
            depends_on="openvino",
            tuned=True,
        ),
        _openvino_wo(8, "per output channel"),
        _openvino_wo(4, "in groups of 128 (a narrower layer: the largest power of two that divides it), every "
                        "layer NNCF's ratio 1.0 allows, the rest int8"),
        *(_ovgenai(source) for source in ("openvino", "openvino-int8-wo", "openvino-int4-wo")),
        VariantSpec(
            "inc-int8",
            "inc",
            "int8",
            "Intel Neural Compressor 3.x static int8 (PT2E: torch.export + X86InductorQuantizer, "
            "W8A8 per-channel weights), calibrated on local calibration inputs; runs as INC's "
            "quantize-dequantize graph in eager PyTorch (torch.compile gave no speedup on a 2-core AVX-512 CPU "
            "and costs ~50 s per load)",
            (("approach", "static"),),
            calibrated=True,
        ),
        VariantSpec(
            "inc-int8-autotune",
            "inc",
            "int8",
            "Intel Neural Compressor 3.x autotune (TuningConfig, tolerable_loss = the quality limit): INC's "
            "static int8 tuning space, then more Linear layers kept in fp32, tried in order (fastest first) "
            "until the relative MAP loss on a held-out validation split is within the limit",
            (("approach", "static"), ("accuracy_control", "autotune")),
            calibrated=True,
            tuned=True,
        ),
    )
}


def torch_auto() -> VariantSpec:
    """--gate-dtype auto: the model loaded in the dtype its config names (torch_dtype="auto")."""
    return VariantSpec("torch-auto", "torch", "auto", "PyTorch in the dtype the model's config names "
                       "(torch_dtype='auto', as sentence-transformers' model_kwargs allow)", (("dtype", "auto"),))


def untuned(spec: VariantSpec, registry: dict[str, VariantSpec] | None = None) -> VariantSpec | None:
    """The variant an accuracy-controlled one starts from (openvino-qint8 for openvino-qint8-ac, inc-int8 for
    inc-int8-autotune): same family and precision, not tuned, an artifact of its own, every option of it in `spec`."""
    registry = VARIANTS if registry is None else registry
    opts = spec.opts
    return next((s for s in registry.values() if s.family == spec.family and s.precision == spec.precision
                 and not s.tuned and s.artifact_of is None and s.options
                 and all(opts.get(k) == v for k, v in s.options)), None) if spec.tuned else None


def ordered(ids) -> list[str]:
    """Variant ids in registry order (the reference first), others after by id."""
    index = {vid: i for i, vid in enumerate(VARIANTS)}
    return sorted(ids, key=lambda v: (index.get(v, len(index)), v))


def select(patterns: list[str] | None, registry: dict[str, VariantSpec] | None = None) -> list[VariantSpec]:
    """Variants named by ids or globs, in registry order (none named: the default matrix); unknown names raise with a
    suggestion."""
    registry = VARIANTS if registry is None else registry
    if not patterns:
        return [spec for spec in registry.values() if spec.default]
    chosen: set[str] = set()
    for pattern in patterns:
        hits = fnmatch.filter(registry, pattern)
        if not hits:
            raise UnknownVariantError(unknown_message(pattern, registry))
        chosen.update(hits)
    return [spec for vid, spec in registry.items() if vid in chosen]


def unknown_message(name: str, registry: dict[str, VariantSpec] | None = None) -> str:
    registry = VARIANTS if registry is None else registry
    close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown variant {name!r}.{hint} Known variants: {', '.join(registry)}."


def register(spec: VariantSpec) -> None:
    """A variant from outside the package (its family registered with quantgate.backends.register), gated like the
    packaged ones in every run from here on: in the default matrix when `spec.default`, else when named."""
    if spec.id in VARIANTS:
        raise ValueError(f"variant id {spec.id!r} is already taken")
    VARIANTS[spec.id] = checked(spec)


@dataclass
class Registry:
    """A registry that tests and `--gate-artifact` can extend without touching VARIANTS."""

    variants: dict[str, VariantSpec] = field(default_factory=lambda: dict(VARIANTS))

    def register(self, spec: VariantSpec) -> None:
        if spec.id in self.variants:
            raise QuantgateUsageError(f"variant id {spec.id!r} is already taken; give the artifact or mutant "
                                      "another name")
        self.variants[spec.id] = checked(spec)

    def select(self, patterns: list[str] | None) -> list[VariantSpec]:
        return select(patterns, self.variants)
