"""What gates hand back and what a verdict's variant row holds, typed, in the bottom layer so every room reads them.

`GateResult`: one gate's result for one variant, recorded in the verdict by the plugin's one writer
(quantgate.fixtures.recording.record), which also sets pytest's outcome from it (gate names: quantgate.core.gates).
`VariantResult`: one variant's row of a verdict, and `RunResult` the whole verdict.json read back: what readers
(summary.md, the terminal table, publish, history, merge, the regression baseline, the time guard, the phase table)
take instead of digging into verdict.json by string paths; `decision` is the one place a variant's decision is
made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantgate.core.gates import Gate


@dataclass(frozen=True)
class GateResult:
    """One gate's result for one variant. `numbers` are what the verdict keeps (limits, measurements, decisions);
    `failures` each limit crossed or error, one line each. The test's outcome: failed with `message` (or the
    failures) when there are failures; else, with `inconclusive` set, what thresholds.toml [decision] inconclusive
    says; else passed. A stored format (`stored_format`, VARIANT@FORMAT) is kept under the variant's formats, its
    decision in its numbers, apart from the variant's own gates; a result of the whole run (`of_run`) in the verdict's
    header."""

    numbers: dict[str, Any] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    message: str | None = None
    inconclusive: str | None = None
    stored_format: str | None = None
    of_run: str | None = None  # a result of the run, not of a variant (the regression): the verdict header's key
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
    time: dict[str, Any] = field(default_factory=dict)  # the time guard's estimate beside what it took
    shard: int | None = None  # a merged verdict: the shard that gated it

    @classmethod
    def from_dict(cls, vid: str, entry: dict[str, Any]) -> VariantResult:
        return cls(vid, {name: GateResult.from_dict(g) for name, g in (entry.get("gates") or {}).items()},
                   tuple(entry.get("failures") or ()), dict(entry.get("formats") or {}),
                   dict(entry.get("artifact") or {}), dict(entry.get("runtime") or {}), dict(entry.get("memory") or {}),
                   entry.get("wall_seconds"), bool(entry.get("passed", False)), dict(entry.get("time") or {}),
                   entry.get("shard"))

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


@dataclass(frozen=True)
class RunHeader:
    """A kept verdict's run, typed for the readers that compare runs (the time guard): what decides the reference's
    cost (candidate, data, subset, device, threads, machine), what scoring cost and what the cache saved, and its
    variants' rows."""

    candidate_sha256: str | None = None
    data_sha256: tuple[str | None, ...] = ()
    subset: tuple[tuple[str, Any], ...] = ()
    device: str | None = None
    threads: int | None = None
    cpu: str | None = None
    scoring_seconds: dict[str, float] = field(default_factory=dict)  # VARIANT@DATA -> seconds
    reference_scores_cached: bool = False
    scores_kept: tuple[str, ...] = ()  # variants whose scores came from the cache
    variants: dict[str, VariantResult] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, verdict: dict[str, Any]) -> RunHeader:
        return cls((verdict.get("candidate") or {}).get("sha256"),
                   tuple(d.get("sha256") for d in verdict.get("data") or ()),
                   tuple(sorted((verdict.get("subset") or {}).items())), verdict.get("device"), verdict.get("threads"),
                   (verdict.get("machine") or {}).get("cpu"), dict(verdict.get("scoring_seconds") or {}),
                   bool(verdict.get("reference_scores_cached")), tuple(verdict.get("scores_kept") or ()),
                   {vid: VariantResult.from_dict(vid, entry) for vid, entry in (verdict.get("variants") or {}).items()})

    def scoring_of(self, variant: str) -> float:
        """The seconds this run spent scoring `variant`, every data set."""
        return sum(s for key, s in self.scoring_seconds.items() if key.startswith(f"{variant}@"))


@dataclass(frozen=True)
class DataRecord:
    """One data set a run gated on, as its verdict names it."""

    name: str = "?"
    sha256: str = ""
    embedded: bool = False  # the packaged demonstration set
    note: str = ""


@dataclass(frozen=True)
class RunResult:
    """A verdict.json read back: its variant rows typed, the variants skipped and why, whether the run finished, and
    the run's facts (candidate, data, thresholds, machine, baseline and regression). What readers take; the file's
    format and its converters are quantgate.results.verdict's. Sub-documents a gate wrote (the encoding, the first
    stage's scores, the baseline's header) stay as written, as a gate's numbers do; `run` keeps every other field."""

    variants: dict[str, VariantResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    complete: bool = False
    candidate: dict[str, Any] = field(default_factory=dict)  # source, kind, kind_reason, sha256
    data: tuple[DataRecord, ...] = ()
    thresholds_path: str | None = None
    thresholds_sha256: str | None = None
    cpu: str | None = None
    threads: int | None = None
    written_at: str | None = None
    finished: tuple[str, ...] = ()  # an incomplete run: the variants it finished
    resumed: tuple[str, ...] = ()  # variants taken from an earlier incomplete run
    peak_rss_mb: float | None = None
    budget_s: float | None = None  # --gate-time-budget, in seconds
    top_k: int | None = None  # the candidates scored per query (--gate-top-k)
    encoding: dict[str, Any] = field(default_factory=dict)
    first_stage: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)  # --gate-baseline: what it was
    regression: GateResult = field(default_factory=GateResult)  # the regression gate's (empty: it did not run)
    run: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        def record(d: dict[str, Any]) -> DataRecord:
            return DataRecord(str(d.get("name", "?")), str(d.get("sha256") or ""), bool(d.get("embedded")),
                              str(d.get("note") or ""))

        thresholds, regression = data.get("thresholds") or {}, data.get("regression")
        return cls({vid: VariantResult.from_dict(vid, entry) for vid, entry in (data.get("variants") or {}).items()},
                   dict(data.get("skipped") or {}), bool(data.get("complete", False)),
                   dict(data.get("candidate") or {}), tuple(record(d) for d in data.get("data") or ()),
                   thresholds.get("path"), thresholds.get("sha256"), (data.get("machine") or {}).get("cpu"),
                   data.get("threads"), data.get("written_at"), tuple(data.get("finished") or ()),
                   tuple(data.get("resumed") or ()), data.get("peak_rss_mb"), (data.get("plan") or {}).get("budget_s"),
                   (data.get("subset") or {}).get("top_k"), dict(data.get("encoding") or {}),
                   dict(data.get("first_stage") or {}), dict(data.get("baseline") or {}),
                   GateResult.from_dict(regression) if isinstance(regression, dict) else GateResult(),
                   {k: v for k, v in data.items() if k not in ("variants", "skipped", "complete")})

    def variant(self, vid: str) -> VariantResult:
        """A variant's row (an empty one where the run has none)."""
        return self.variants.get(vid) or VariantResult(vid)

    @property
    def passed(self) -> list[str]:
        """The variants a complete run decided pass."""
        return [vid for vid, result in self.variants.items() if result.passed]
