"""The gates' names in verdict.json, defined once (the plugin, the verdict, the summary and publish read them)."""

from __future__ import annotations

from enum import StrEnum


class Gate(StrEnum):
    """A gate's name in verdict.json (a speed gate's is per batch: `speed-b32`, see `per_batch`)."""

    BUILD = "build"
    AGREEMENT = "agreement"
    BATCH = "batch"
    QUALITY = "quality"
    STORED_FORMAT = "stored-format"
    SPEED = "speed"
    REGRESSION = "regression"
    REGRESSION_SPEED = "regression-speed"
    RUN = "run"  # a variant whose tests ran and recorded nothing, or crashed outside a gate

    def per_batch(self, label: str) -> str:
        """`speed-b1`, `regression-speed-bauto`: the gate at one batch (label `b1`, `b32`, `bauto`)."""
        return f"{self.value}-{label}"


CHECK_PREFIX = "check:"  # a team's own check (gate_record) in verdict.json: "check:<name>", beside the gates
