"""Stored embedding format ids: `[dimN-]PRECISION[-rescore]`, or `dimN` alone (what each means, and the index that
holds it: quantgate.evaluation.formats). What the options, thresholds.toml, publish and the gate share of a format:
its id, parsed once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quantgate.errors import QuantgateUsageError

DEFAULT_FORMATS = "float32,int8,int8-rescore,binary,binary-rescore,dim256,dim128-int8"


@dataclass(frozen=True)
class Precision:
    """What an index keeps of each dimension, declared once. `bits` per dimension; `index` the faiss index that holds
    it ("flat": inner product of float32 vectors; "sq8" / "sq8-signed": faiss' direct 8-bit codes, inner product;
    "binary": Hamming over packed bits); `calibrated`: quantized between each dimension's calibration minimum and
    maximum (the ranges are saved and published); `max_loss` / `rescore_max_loss`: its default limits in
    thresholds.toml [embedding_formats.max_loss] (no rescore limit: no -rescore form); `encode`: unit vectors and
    ranges -> what the index stores, None for sentence-transformers' `quantize_embeddings` under this name."""

    name: str
    bits: int
    index: str
    max_loss: float
    rescore_max_loss: float | None = None
    calibrated: bool = False
    encode: Callable[[Any, Any], Any] | None = None


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("float32", 32, "flat", 0.0155),
    Precision("int8", 8, "sq8-signed", 0.0155, 0.0155, calibrated=True),  # 256 buckets per dimension
    Precision("uint8", 8, "sq8", 0.0155, 0.0155, calibrated=True),
    Precision("binary", 1, "binary", 0.10, 0.05),  # the sign; the same bits stored as int8 or uint8 bytes
    Precision("ubinary", 1, "binary", 0.10, 0.05),
)}


def register_precision(precision: Precision) -> None:
    """A stored precision from outside the package (a team's, or a test's): its format ids parse, its index is built
    and searched, its limits default to its own, like the packaged ones. One declaration and this one call."""
    if precision.name in PRECISIONS:
        raise ValueError(f"stored precision {precision.name!r} is already registered")
    if precision.index not in ("flat", "sq8", "sq8-signed", "binary"):
        raise ValueError(f"stored precision {precision.name!r}: index {precision.index!r} is none of flat, sq8, "
                         "sq8-signed, binary")
    PRECISIONS[precision.name] = precision


def selected(ids: tuple[str, ...] | None) -> list[str]:
    """The format ids a run judges: --gate-embedding-formats as parsed (None: not given, the defaults)."""
    return DEFAULT_FORMATS.split(",") if ids is None else list(ids)


@dataclass(frozen=True)
class StoredFormat:
    id: str
    precision: str
    rescore: bool = False
    dim: int | None = None  # None: every dimension of the model

    @property
    def kind(self) -> Precision:
        return PRECISIONS[self.precision]

    @property
    def quantized(self) -> bool:
        return self.precision != "float32"

    @property
    def calibrated(self) -> bool:
        return self.kind.calibrated

    def dimensions(self, full: int) -> int:
        return self.dim or full

    def bytes_per_vector(self, full: int) -> float:
        return self.dimensions(full) * self.kind.bits / 8


def parse(value: str) -> StoredFormat:
    """One format id; a ValueError with what is allowed when it is not one."""
    names = "|".join(sorted(map(re.escape, PRECISIONS), key=len, reverse=True))
    found = re.match(rf"^(?:dim(?P<dim>[1-9][0-9]*))?-?(?P<precision>{names})?(?P<rescore>-rescore)?$", value.strip())
    if not found or not (found["dim"] or found["precision"]):
        raise ValueError(f"{value!r} is not a stored format: [dimN-]PRECISION[-rescore] with PRECISION one of "
                         f"{', '.join(PRECISIONS)} (e.g. int8-rescore, dim256, dim256-int8), or none")
    precision = found["precision"] or "float32"
    if found["rescore"] and PRECISIONS[precision].rescore_max_loss is None:
        raise ValueError(f"{value!r}: {precision} vectors are rescored by nothing (-rescore needs a quantized "
                         "precision)")
    return StoredFormat(value.strip(), precision, bool(found["rescore"]), int(found["dim"]) if found["dim"] else None)


def parse_list(value: str) -> list[StoredFormat]:
    """`--gate-embedding-formats`: comma-separated ids, `default`, or `none`."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["none"]:
        return []
    if names == ["default"]:
        names = DEFAULT_FORMATS.split(",")
    return list({f.id: f for f in map(parse, names)}.values())


def check_dimensions(formats: list[StoredFormat], full: int, model: str) -> None:
    """A format that cuts to more dimensions than the model has is one usage error, before any search."""
    if too_wide := [f.id for f in formats if f.dim and f.dim > full]:
        raise QuantgateUsageError(f"--gate-embedding-formats {', '.join(too_wide)}: {model} has {full} dimensions; "
                                  f"a dimN format needs N <= {full}")
