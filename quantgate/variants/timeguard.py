"""The time guard: each variant's time estimated before it starts, from what was measured, and a budget to hold.

The unit of work is what the reference costs in this run: its wall time (build, scoring, every gate), plus the seconds
of scoring its cached scores saved (the cache keeps them), so a run that takes the reference's scores from the cache
is measured like one that scored them. A variant's estimate is its wall time measured before, scaled by how much more
(or less) this run's reference costs than that measurement's: the same candidate and data give the measured seconds
back; a model twice as slow, or twice the data, doubles them. The measurements come from this machine's kept verdicts
(quantgate history: the median of the latest runs that gated the variant, its artifact built or taken from the cache
as it will be now), else from the project's own cold default run (DEFAULT_MULTIPLES). The reference always runs
(everything is compared with it); with `--gate-time-budget`, a variant whose estimate does not fit what is left is
skipped with one line, before any of its work. Every variant's estimate and its actual wall time go into verdict.json:
the next run estimates from this one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from quantgate.backends import FAMILIES, backend
from quantgate.backends.openvino_ac import ranking_compiles
from quantgate.core.gates import Gate
from quantgate.core.results import RunHeader
from quantgate.variants.registry import REFERENCE_ID

# wall(variant) / the reference's unit, one cold default run (every artifact built; the embedded embedder on
# quantgate-mini; 2-core AVX-512 VM; docs/measurements.md "Time guard"), declared by each family's module
# (TIME_MULTIPLES). Used only without a history.
DEFAULT_MULTIPLES: dict[str, float] = {
    vid: multiple for family in FAMILIES for vid, multiple in getattr(backend(family), "TIME_MULTIPLES", {}).items()
}
HISTORY_RUNS = 5
# Accuracy control without a measurement of its own: each trial scores the validation split once (NNCF: the
# quantized model's pass and the saved model's check, then one per group of operations reverted; the float model's
# come from the reference's cached validation; INC: one per configuration), and on a base-size model those passes
# are much of its cost (2,260 s for openvino-qint8-ac with an MPNet-base embedder on scifact), far more than the
# embedded run's multiple says. Their time is added from measured items/s (below).
EXTRA_PASSES = 2
# NNCF ranks the groups of quantizers before its first trial (when plain int8 misses the limit), coarse to fine
# (openvino_ac.ranking_compiles: about 2*sqrt(groups*trials) compiles), each a compile and the ranking queries scored.
# Measured (docs/measurements.md): groups 0.92 and 0.86 per weight matrix (MiniLM-L6 reranker about 35 of 38,
# BERT-base embedder 63 of 73); a ranking model's compile (reverted from one compressed copy) 0.38 s alone for
# MiniLM-L6 (0.09 GB of fp32 weights), 0.94 s in a BERT-base embedder's build (0.41 GB). That embedder's build
# ranked once (26 models), the shared reranker's tight build compiled 21 models in all; RANKINGS = 2 allows a
# re-ranking after a step back with a trial left, so a first run's estimate errs long. Passes and rankings are
# scored at the rate of the model they score: the untuned int8 variant's in the run when it has scored
# (quantgate.session.timing), else the reference's.
GROUPS_PER_MATRIX = 0.9
RANKINGS = 2
COMPILE_S, COMPILE_S_PER_GB = 0.2, 1.8


def tuning_seconds(control: dict[str, int], items_per_s: float, nncf: bool, matrices: int = 0,
                   weight_gb: float = 0.0) -> float:
    """An accuracy-controlled build's validation work at `items_per_s`: (max_trials + EXTRA_PASSES)
    passes of the validation split (a query's candidates and the query: C + 1 items); for NNCF, RANKINGS rankings of
    its groups (GROUPS_PER_MATRIX x `matrices`), each compile with the ranking queries scored."""
    per_query = control["validation_candidates"] + 1
    seconds = (control["max_trials"] + EXTRA_PASSES) * control["validation_queries"] * per_query / items_per_s
    if nncf:
        ranking_items = min(control["ranking_queries"], control["validation_queries"]) * per_query
        group_s = ranking_items / items_per_s + COMPILE_S + COMPILE_S_PER_GB * weight_gb
        groups = max(1, round(GROUPS_PER_MATRIX * matrices))
        seconds += RANKINGS * ranking_compiles(groups, control["max_trials"]) * group_s
    return seconds


def fitted_validation(control: dict[str, int], queries: int, fixed_s: float, left_s: float, items_per_s: float,
                      nncf: bool, matrices: int = 0, weight_gb: float = 0.0, scale: float = 1.0) -> int | None:
    """The most validation queries, from the split's `queries` down to `[accuracy_control] min_validation_queries`,
    whose tuning work (tuning_seconds x `scale`) fits in `left_s` beside the build's `fixed_s`; None when not even
    the least does. Its cost grows with the queries, so the first that fits from the top is the largest."""
    least = min(control["min_validation_queries"], queries)
    for n in range(queries, least - 1, -1):
        if fixed_s + scale * tuning_seconds({**control, "validation_queries": n}, items_per_s, nncf, matrices,
                                            weight_gb) <= left_s:
            return n
    return None


def reference_unit(run: RunHeader) -> float:
    """What the reference cost in a run: its wall seconds, plus its scoring seconds when its scores came from the
    cache."""
    reference = run.variants.get(REFERENCE_ID)
    wall = (reference.wall_seconds if reference is not None else None) or 0.0
    return wall + (run.scoring_of(REFERENCE_ID) if run.reference_scores_cached else 0.0) if wall else 0.0


def run_key(run: RunHeader) -> tuple:
    """What decides the reference's cost in a run: the candidate, the data and the subset of it (with the machine,
    which `measurements` and `units` filter on). Two runs with the same key cost the reference the same."""
    return run.candidate_sha256, run.data_sha256, run.subset, run.device, run.threads


def units(runs: list[RunHeader], cpu: str) -> dict[tuple, list[float]]:
    """run_key -> the reference's unit in each kept run of this machine, oldest first: a run like an earlier one
    has its plan before any work."""
    out: dict[tuple, list[float]] = {}
    for run in runs:
        if run.cpu == cpu and (unit := reference_unit(run)) > 0:
            out.setdefault(run_key(run), []).append(unit)
    return out


@dataclass
class Estimate:
    variant: str
    seconds: float
    source: str  # where it comes from

    def to_dict(self) -> dict[str, Any]:
        return {"estimated_s": round(self.seconds, 1), "from": self.source}


def measurements(runs: list[RunHeader], cpu: str) -> dict[tuple[str, bool], list[float]]:
    """(variant, built cold) -> its wall seconds per unit of the reference's cost, oldest first, from the kept runs
    of this machine."""
    out: dict[tuple[str, bool], list[float]] = {}
    for run in runs:
        unit = reference_unit(run)
        if run.cpu != cpu or unit <= 0:
            continue
        for vid, row in run.variants.items():
            if vid == REFERENCE_ID or not row.wall_seconds:
                continue
            cold = not row.numbers(Gate.BUILD).get("cached", True)
            kept = run.scoring_of(vid) if vid in run.scores_kept else 0.0  # its scores came from the cache: their cost
            out.setdefault((vid, cold), []).append((row.wall_seconds + kept) / unit)
    return out


@dataclass
class TimeGuard:
    budget_s: float | None  # None: estimate and report, skip nothing
    started: float  # perf_counter at the session's start
    history: dict[tuple[str, bool], list[float]] = field(default_factory=dict)
    units: dict[tuple, list[float]] = field(default_factory=dict)  # run_key -> the reference's unit in earlier runs

    def earlier_unit(self, key: tuple) -> float | None:
        """The reference's unit in the latest earlier runs with the same candidate, data and subset (median)."""
        measured = self.units.get(key)
        return statistics.median(measured[-HISTORY_RUNS:]) if measured else None

    def multiple(self, variant: str, cold: bool) -> tuple[float, str]:
        measured = self.history.get((variant, cold)) or self.history.get((variant, not cold))
        if measured:
            recent = measured[-HISTORY_RUNS:]
            return statistics.median(recent), f"{len(recent)} earlier run(s) on this machine"
        if variant in DEFAULT_MULTIPLES:
            return DEFAULT_MULTIPLES[variant], "the project's cold default run"
        return max(DEFAULT_MULTIPLES.values()), "not measured yet: the costliest variant measured"

    def estimate(self, variant: str, cold: bool, unit_s: float, tuning_s: float = 0.0) -> Estimate:
        """`tuning_s`: the validation passes of an accuracy-controlled variant at the reference's rate, added when
        the multiple is not this machine's measurement of the variant (which holds them already)."""
        multiple, source = self.multiple(variant, cold)
        if tuning_s and "earlier run" not in source:
            return Estimate(variant, multiple * unit_s + tuning_s, f"{source}, plus its validation passes")
        return Estimate(variant, multiple * unit_s, source)

    def left(self, now: float) -> float | None:
        return None if self.budget_s is None else self.budget_s - (now - self.started)

    def skip_reason(self, estimate: Estimate, now: float) -> str | None:
        left = self.left(now)
        if left is None or estimate.seconds <= left:
            return None
        return (f"time guard: {estimate.variant} is estimated at {minutes(estimate.seconds)} (from {estimate.source}); "
                f"{minutes(max(left, 0))} of the {minutes(self.budget_s)} budget are left: skipped. Fit it with a "
                "larger --gate-time-budget, fewer variants (--variants), a shard per CI job (--gate-shard I/N) or "
                "less data (--gate-max-queries)")


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
