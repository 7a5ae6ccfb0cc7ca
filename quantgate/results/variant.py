"""One variant's row of a verdict, typed: what readers (summary.md, the terminal table, publish, history) take
instead of digging into verdict.json by string paths. `decision` is the one place a variant's decision is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantgate.core.gates import Gate
from quantgate.results.outcome import GateResult


@dataclass(frozen=True)
class VariantResult:
    id: str
    gates: dict[str, GateResult] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)  # VARIANT@FORMAT: id -> its record
    artifact: dict[str, Any] = field(default_factory=dict)  # path, files, load (what the build read back), spec
    runtime: dict[str, Any] = field(default_factory=dict)  # what it ran with, read back from the runtime
    memory: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float | None = None
    passed: bool = False  # written by a complete run: decided pass

    @classmethod
    def from_dict(cls, vid: str, entry: dict[str, Any]) -> VariantResult:
        return cls(vid, {name: GateResult.from_dict(g) for name, g in entry.get("gates", {}).items()},
                   tuple(entry.get("failures") or ()), dict(entry.get("formats", {})), dict(entry.get("artifact", {})),
                   dict(entry.get("runtime", {})), dict(entry.get("memory", {})), entry.get("wall_seconds"),
                   bool(entry.get("passed", False)))

    @property
    def decision(self) -> str:
        """fail on any crossed limit or error; else the quality gate's (pass or inconclusive); a variant gated for
        agreement alone, with nothing crossed, is pass."""
        if self.failures or not all(g.recorded_pass for g in self.gates.values()):
            return "fail"
        return self.numbers(Gate.QUALITY).get("decision", "pass")

    def numbers(self, name: str) -> dict[str, Any]:
        """A gate's numbers ({} when it did not run)."""
        found = self.gates.get(name)
        return found.numbers if found is not None else {}

    @property
    def agreement_metrics(self) -> dict[str, Any]:
        """The first data set's agreement metrics (max_abs_error, kendall_tau_mean, ties)."""
        results = self.numbers(Gate.AGREEMENT).get("results") or [{}]
        return results[0].get("metrics", {})

    @property
    def speeds(self) -> dict[int, dict[str, Any]]:
        """The speed gate's numbers by batch size."""
        prefix = Gate.SPEED.per_batch("")
        return {int(g.numbers["batch_size"]): g.numbers for name, g in self.gates.items()
                if name.startswith(prefix) and "batch_size" in g.numbers}

    @property
    def throughput_batch(self) -> int | None:
        """The largest batch timed beyond 1 (the throughput figure's)."""
        return max((b for b in self.speeds if b > 1), default=None)

    @property
    def family(self) -> str | None:
        return self.artifact.get("spec", {}).get("family")
