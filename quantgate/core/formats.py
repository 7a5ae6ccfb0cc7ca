"""Stored embedding format ids: `[dimN-]PRECISION[-rescore]`, or `dimN` alone (what each means, and the index that
holds it: quantgate.evaluation.formats). What the options, thresholds.toml, publish and the gate share of a format:
its id, parsed once."""

from __future__ import annotations

import re
from dataclasses import dataclass

from quantgate.errors import QuantgateUsageError

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
DEFAULT_FORMATS = "float32,int8,int8-rescore,binary,binary-rescore,dim256,dim128-int8"


def selected(ids: tuple[str, ...] | None) -> list[str]:
    """The format ids a run judges: --gate-embedding-formats as parsed (None: not given, the defaults)."""
    return DEFAULT_FORMATS.split(",") if ids is None else list(ids)


_ID = re.compile(r"^(?:dim(?P<dim>[1-9][0-9]*))?-?(?P<precision>float32|u?int8|u?binary)?(?P<rescore>-rescore)?$")


@dataclass(frozen=True)
class StoredFormat:
    id: str
    precision: str
    rescore: bool = False
    dim: int | None = None  # None: every dimension of the model

    @property
    def quantized(self) -> bool:
        return self.precision != "float32"

    @property
    def calibrated(self) -> bool:
        return self.precision in ("int8", "uint8")

    def dimensions(self, full: int) -> int:
        return self.dim or full

    def bytes_per_vector(self, full: int) -> float:
        d = self.dimensions(full)
        return {"float32": 4.0 * d, "int8": float(d), "uint8": float(d)}.get(self.precision, d / 8)


def parse(value: str) -> StoredFormat:
    """One format id; a ValueError with what is allowed when it is not one."""
    found = _ID.match(value.strip())
    if not found or not (found["dim"] or found["precision"]):
        raise ValueError(f"{value!r} is not a stored format: [dimN-]PRECISION[-rescore] with PRECISION one of "
                         f"{', '.join(PRECISIONS)} (e.g. int8-rescore, dim256, dim256-int8), or none")
    precision = found["precision"] or "float32"
    if found["rescore"] and precision == "float32":
        raise ValueError(f"{value!r}: float32 vectors are rescored by nothing (-rescore needs a quantized precision)")
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
