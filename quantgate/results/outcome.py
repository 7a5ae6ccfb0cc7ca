"""What a gate hands back: one typed result per gate test, recorded in the verdict by the plugin's one writer
(quantgate.fixtures.recording.record), which also sets pytest's outcome from it (gate names: quantgate.core.gates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateResult:
    """One gate's result for one variant. `numbers` are what the verdict keeps (limits, measurements, decisions);
    `failures` each limit crossed or error, one line each. The test's outcome: failed with `message` (or the
    failures) when there are failures; else, with `inconclusive` set, what thresholds.toml [decision] inconclusive
    says; else passed. A stored format (`stored_format`, VARIANT@FORMAT) is kept under the variant's formats, its
    decision in its numbers, apart from the variant's own gates."""

    numbers: dict[str, Any] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    message: str | None = None
    inconclusive: str | None = None
    stored_format: str | None = None
    read_passed: bool | None = field(default=None, compare=False)  # a recorded entry's "passed", as read back

    @classmethod
    def failed(cls, line: str, numbers: dict[str, Any] | None = None, message: str | None = None) -> GateResult:
        """A gate that could not measure (the variant did not build, score or load): one line, recorded as its
        failure."""
        return cls(dict(numbers or {}), (line,), message or line)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def recorded_pass(self) -> bool:
        """Whether the verdict says it passed (a read-back entry without "passed" did not)."""
        return self.passed if self.read_passed is None else self.read_passed

    def test_message(self) -> str | None:
        """What the test fails with, or None when the failures do not fail it."""
        if not self.failures:
            return None
        return self.message or "\n".join(self.failures)

    def to_dict(self) -> dict[str, Any]:
        """The verdict's entry: the numbers, then whether it passed and its failures (a stored format: its numbers
        alone)."""
        if self.stored_format is not None:
            return dict(self.numbers)
        return {**self.numbers, "passed": self.passed, "failures": list(self.failures)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """A recorded gate entry read back (resume, a variant that runs the same model): its numbers and failures."""
        numbers = {k: v for k, v in data.items() if k not in ("passed", "failures")}
        return cls(numbers, tuple(data.get("failures") or ()), read_passed=bool(data.get("passed", False)))
