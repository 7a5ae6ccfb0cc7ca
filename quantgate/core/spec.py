"""A variant's spec: what every layer says of a variant (its id, family, precision, options, requirements), with no
knowledge of how its family builds it (quantgate.backends) or which variants a run gates (quantgate.variants)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

REFERENCE_ID = "torch-fp32"


@dataclass(frozen=True)
class VariantSpec:
    """One backend/precision variant of a candidate.

    `options` are the builder's arguments; they enter the cache key, so changing one
    rebuilds the artifact.
    """

    id: str
    family: str
    precision: str
    description: str
    options: tuple[tuple[str, Any], ...] = ()
    requires: tuple[str, ...] = ()  # machine capabilities, e.g. ("cuda",)
    calibrated: bool = False  # static quantization: needs calibration inputs
    depends_on: str | None = None  # built from another variant's artifact
    tuned: bool = False  # accuracy-controlled: tuned against the quality limit on a validation split
    artifact_of: str | None = None  # runs another variant's artifact (the same files) with its own runtime options
    # in the matrix a plain `pytest gates/` gates; False: named with --variants (the weight-only and engine variants,
    # what teams publish and serve for 0.5B+ decoder models: on the embedded MiniLM they added 3 minutes and 35
    # stored-format rows that quantgate-mini cannot decide)
    default: bool = True

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["options"] = dict(self.options)
        return data

    def key_material(self) -> str:
        """What of this spec decides the artifact's bytes (the description does not)."""
        data = self.to_dict()
        data.pop("description")
        data.pop("artifact_of")  # such a variant has no artifact of its own (VariantFactory.key); keys stay as before
        data.pop("default")  # which variants a plain run selects decides no artifact's bytes
        return json.dumps(data, sort_keys=True, default=str)
