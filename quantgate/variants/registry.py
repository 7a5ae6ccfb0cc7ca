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


# Each family's module declares its variants (VARIANTS): the matrix is theirs in FAMILIES' order, the reference first.
VARIANTS: dict[str, VariantSpec] = {
    spec.id: checked(spec) for family in FAMILIES for spec in getattr(backend(family), "VARIANTS", ())
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
