"""How a gate session holds a time budget: the time guard (quantgate.variants.timeguard) asked before each variant,
the plan printed once the reference has been timed, each variant's estimate and actual time in the verdict. A part
of GateSession (quantgate.session.core), which provides context, run, factory and cache."""

from __future__ import annotations

import time
from functools import cached_property

from quantgate.core import machine
from quantgate.core.memory import GB
from quantgate.core.results import RunHeader
from quantgate.variants.registry import REFERENCE_ID, VariantSpec, untuned
from quantgate.variants.timeguard import (
    Estimate,
    TimeGuard,
    fitted_validation,
    measurements,
    minutes,
    reference_unit,
    run_key,
    tuning_seconds,
    units,
)


class SessionTime:
    @cached_property
    def time_guard(self) -> TimeGuard:
        from quantgate.results.history import load  # noqa: PLC0415 -- reads the kept verdicts once

        runs, _ = load(self.context.history_dir) if self.context.history_dir.is_dir() else ([], [])
        budget = self.context.settings.time_budget_min
        cpu = machine.cpu_summary()
        kept = [RunHeader.from_dict(verdict) for verdict in runs]  # read once for both tables
        return TimeGuard(budget * 60 if budget else None, self.run.began, measurements(kept, cpu), units(kept, cpu))

    def _unit(self) -> float | None:
        """This run's unit of work: what the reference cost once it has finished; before that, what it cost in the
        earlier runs of this machine with the same candidate, data and subset (None without one)."""
        run = RunHeader.from_dict({**self.run.verdict.header, "variants": self.run.verdict.variants})
        unit = reference_unit(run)
        return unit if unit > 0 else self.time_guard.earlier_unit(run_key(run))

    def plan_before_work(self) -> None:
        """The plan at the start, when an earlier run of this candidate and data on this machine measured the
        reference: every variant's estimate, the reference's own included; otherwise said to come later."""
        unit = self._unit()
        if unit is None:
            self.context.progress("plan: once the reference is timed (no earlier run of this candidate and data on "
                                  "this machine in the kept verdicts)")
            return
        self._plan(unit, "from earlier runs of this candidate and data on this machine, before any work",
                   with_reference=True)

    def estimate(self, spec: VariantSpec) -> Estimate | None:
        unit = self._unit()
        if spec.id == REFERENCE_ID or unit is None:
            return None
        cold = not self.cache.has(spec.id, self.factory.key(spec))
        estimate = self.time_guard.estimate(spec.id, cold, unit, self._tuning_seconds(spec) if cold else 0.0)
        first = self._built_first(spec)
        if first is None or (before := self.estimate(first)) is None:
            return estimate
        return Estimate(spec.id, estimate.seconds + before.seconds,
                        f"{estimate.source}, plus {first.id}'s build first ({before.source})")

    def _built_first(self, spec: VariantSpec) -> VariantSpec | None:
        """The variant whose artifact this one is built from or runs when this one has to build it: not in the cache
        and not ahead of it in this run (skipped, or not selected). The measured multiples hold no such build (the
        base reranker's openvino-qint8-bf16, measured after openvino-qint8 had built its IR, was estimated at 19 s
        and took 42 s with openvino-qint8 skipped); with it added, what did not fit as the source does not fit here."""
        following = spec.artifact_of or spec.depends_on
        first = self.context.registry.variants.get(following) if following else None
        if first is None or self.factory.is_cached(first):
            return None
        ahead = first.id in self.context.owned and first.id not in self.run.verdict.header.get("skipped", {})
        return None if ahead else first

    def _tuning_rate(self, spec: VariantSpec) -> float | None:
        """The items/s of the model an accuracy-controlled build scores: its untuned variant's in this run when that
        has scored (the base embedder's openvino-qint8 scored 3.7x the reference's rate), else the reference's."""
        plain = untuned(spec)
        rate = self._items_per_s(plain.id) if plain is not None else None
        return rate or self._items_per_s(REFERENCE_ID)

    def _tuning_seconds(self, spec: VariantSpec, queries: int | None = None) -> float:
        """An accuracy-controlled build's validation work (timeguard.tuning_seconds) on `queries` validation queries
        (default: the split it will tune on), at _tuning_rate."""
        if not spec.tuned or not (rate := self._tuning_rate(spec)):
            return 0.0
        control = dict(self.context.thresholds.accuracy_control)
        control["validation_queries"] = (queries or self.run.validation_cuts.get(spec.id)
                                         or control["validation_queries"])
        return tuning_seconds(control, rate, *self._tuning_shape(spec))

    def _tuning_shape(self, spec: VariantSpec) -> tuple[bool, int, float]:
        """What of the model and method timeguard.tuning_seconds counts: NNCF or not, weight matrices, fp32 GB."""
        candidate = self.context.candidate
        return (spec.opts.get("accuracy_control") == "nncf", candidate.matrix_weights,
                candidate.fp32_weight_bytes / GB)

    def _cut_validation(self, spec: VariantSpec, estimate: Estimate, left: float | None) -> Estimate | None:
        """An accuracy-controlled variant that does not fit what is left of the budget with its whole validation
        split: the split cut to the most queries that fit (timeguard.fitted_validation, down to [accuracy_control]
        min_validation_queries) and its new estimate, or None. The build's other work stays as estimated; the passes
        shrink with the queries. A smaller split tunes on noisier losses; the tuned artifact is then gated on the
        evaluation data like every variant, so the decision does not rest on it."""
        rate = self._tuning_rate(spec) if spec.tuned and left is not None else None
        if not rate or spec.id in self.run.validation_cuts:
            return None
        queries = len(self.context.validation.candidates)
        # an estimate measured on this machine holds its passes in its multiple, and a tuning that stops early
        # costs less than max_trials passes (the shared reranker's openvino-qint8-ac: 696 s against 1,807 s
        # estimated from the table when plain int8 met the limit): below the table's passes, they are scaled to it
        passes = self._tuning_seconds(spec)
        scale = min(1.0, estimate.seconds / passes) if passes else 1.0
        fixed = estimate.seconds - scale * passes
        n = fitted_validation(self.context.thresholds.accuracy_control, queries, fixed, left, rate,
                              *self._tuning_shape(spec), scale)
        if n is None or n >= queries:
            return None
        self.run.validation_cuts[spec.id] = n
        self.factory.retune(spec)
        cut = Estimate(spec.id, fixed + scale * self._tuning_seconds(spec, n),
                       f"{estimate.source}; its validation split cut from {queries} to {n} queries to fit the budget")
        self.context.progress(f"time guard: {spec.id} is estimated at {minutes(estimate.seconds)} with its {queries} "
                              f"validation queries, {minutes(cut.seconds)} with {n}: {minutes(max(left, 0))} of the "
                              "budget are left, so it tunes on those (set [accuracy_control] min_validation_queries "
                              "to validation_queries to fix the split)")
        return cut

    def _items_per_s(self, variant: str) -> float | None:
        """What a variant scored in this run per second: pairs for a reranker, texts for an embedder."""
        scored = [self.run.scores[key] for key in self.run.scores if key[0] == variant]
        seconds = sum(s.seconds for s in scored)
        items = sum(len(s.keys) if self.context.candidate.kind == "reranker" else len(s.texts) for s in scored)
        return items / seconds if seconds and items else None

    def time_skip(self, spec: VariantSpec) -> str | None:
        """Why the time guard skips this variant (recorded in the verdict), or None; its estimate is kept."""
        if self.resumed_entry(spec) is not None or (estimate := self.estimate(spec)) is None:
            return None
        self.run.estimates[spec.id] = estimate
        now = time.perf_counter()
        left = self.time_guard.left(now)
        done = set(self.run.verdict.header.get("finished", [])) | set(self.run.saved)
        later = [s for s in self.context.selected if s.id in self.context.owned and s.id not in done]
        planned = self.run.verdict.header.get("plan", {}).get("estimated_s", {})  # record_time, after the reference
        remaining = sum(planned.get(s.id, 0.0) for s in later)
        self.context.progress(f"{spec.id}: estimated {minutes(estimate.seconds)} (from {estimate.source}); about "
                              f"{minutes(remaining)} for the {len(later)} variant(s) left"
                              + (f", {minutes(max(left, 0))} of the budget left" if left is not None else ""))
        why = self.time_guard.skip_reason(estimate, now)
        if why and (cut := self._cut_validation(spec, estimate, left)) is not None:
            self.run.estimates[spec.id], why = cut, None
        if why and spec.tuned:
            least = self.context.thresholds.accuracy_control["min_validation_queries"]
            why += (f", or a smaller [accuracy_control] min_validation_queries (it tunes on at least {least} "
                    "validation queries)")
        if why:
            self.run.verdict.header.setdefault("skipped", {})[spec.id] = why
            self.context.progress(why)
        return why

    def record_time(self, spec: VariantSpec, entry: dict) -> None:
        """The variant's estimate beside its actual wall time (verdict.json `time`); after the reference, the plan."""
        estimate = self.run.estimates.get(spec.id)
        entry["time"] = {**(estimate.to_dict() if estimate else {}), "actual_s": entry.get("wall_seconds")}
        if spec.id != REFERENCE_ID or self._unit() is None:
            return
        self._plan(self._unit(), "the reference timed in this run")

    def _plan(self, unit: float, basis: str, with_reference: bool = False) -> None:
        """Every variant's estimate in the header and one line; `with_reference`: the reference is still ahead."""
        owned = self.context.owned
        plan = {s.id: e.seconds for s in self.context.selected if s.id in owned and (e := self.estimate(s)) is not None}
        ahead = (unit if with_reference and REFERENCE_ID in owned else 0.0) + sum(plan.values())
        self.run.verdict.header["plan"] = {"estimated_s": {v: round(s, 1) for v, s in plan.items()},
                                           "budget_s": self.time_guard.budget_s, "basis": basis,
                                           "reference_s": round(unit, 1)}
        budget = f" (budget {minutes(self.time_guard.budget_s)})" if self.time_guard.budget_s else ""
        self.context.progress(f"plan ({basis}): {len(plan)} variant(s) besides the reference, about {minutes(ahead)} "
                              f"in all{budget}")
