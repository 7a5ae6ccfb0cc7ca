"""GateSession: the plugin's object for one gate run — the frozen context, the run's measurements and the services
built on them (quantgate.session.context, .scores, quantgate.session.evaluator.Evaluator)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from quantgate import logs
from quantgate.core.cache import ArtifactCache, default_cache_dir
from quantgate.core.spec import VariantSpec
from quantgate.evaluation.data import calibration_inputs, validation_sample
from quantgate.results.run import GateRun
from quantgate.session.context import EMBEDDED_NOTE, GateContext
from quantgate.session.evaluator import Evaluator
from quantgate.session.lifecycle import VariantLifecycle
from quantgate.session.scores import ScoreStore
from quantgate.session.settings import GateSettings
from quantgate.session.timing import SessionTime
from quantgate.variants.factory import VariantFactory


class GateSession(VariantLifecycle, SessionTime):
    """One gate run as the plugin holds it: the frozen context (`context`), the run's measurements (`run`), the
    variant factory (made on first use), the score store and the evaluator built on them, and each variant's life in
    the run (VariantLifecycle, SessionTime: the plugin's hooks call them). Library code takes the context and the
    services it uses, never the session."""

    def __init__(self, settings: GateSettings, progress: Callable[[str], None] | None = None) -> None:
        self.context = GateContext.from_settings(settings, progress)
        self.run = GateRun()
        self.made_factory: VariantFactory | None = None  # nothing loaded or built until a gate asks
        self.store = ScoreStore(self.context, self.run, lambda: self.factory)
        self.evaluator = Evaluator(self.context, self.store, self.run)

    @cached_property
    def cache(self) -> ArtifactCache:
        cache = ArtifactCache(self.context.settings.cache_dir or default_cache_dir())
        if cache.removed_stale:
            self.context.progress(f"cache: removed {len(cache.removed_stale)} folder(s) left by interrupted builds")
        return cache

    def resolve(self) -> None:
        """Everything a gate test needs that can still be wrong, resolved once (one clear error each),
        and the verdict's header. Cheap after the first call."""
        if self.run.verdict.header:
            return
        c, candidate = self.context, self.context.candidate
        c.progress(f"candidate {candidate.source}: {candidate.kind} ({candidate.kind_reason}); "
                   f"sha256 {candidate.content_hash[:12]}")
        _ = c.datasets, c.hub_tasks, c.baseline
        c.progress(f"encoding: {c.encoding.describe(candidate.kind)}")
        if c.baseline is not None:
            b = c.baseline
            c.progress(f"baseline {b.source}: {b.kind}, sha256 {b.sha256[:12]}"
                          + (f" (its verdict {b.verdict_path}: no weights needed)" if b.verdict is not None else ""))
        if c.settings.validation_data:
            _ = c.validation  # a wrong folder, or one that shares queries with evaluation: said now
        for dataset in c.datasets:
            if dataset.embedded:
                c.progress(f"data: {EMBEDDED_NOTE}")
        logs.check_writable(c.settings.report_dir)
        self.run.verdict.header.update(c.verdict_header())
        logs.attach(c.settings.report_dir)  # resolved: from here on, library tracebacks go to REPORT/gate.log
        self.load_saved()
        self.plan_before_work()

    def auto_batch(self, spec: VariantSpec) -> tuple[int, list[dict]]:
        """The throughput batch for `--gate-speed-batch auto`: the largest-throughput batch that fits
        the memory budget, backing off at the first out-of-memory (once per variant and run)."""
        c = self.context
        if spec.id not in self.run.auto_batches:
            from quantgate.speed import bench

            model = self.factory.load(spec)
            budget = bench.memory_budget(c.device, c.settings.memory_budget_mb)
            self.run.auto_batches[spec.id] = bench.find_batch(model, c.candidate.kind, c.evaluation_sets()[0],
                                                          c.device, budget)
            batch, trials = self.run.auto_batches[spec.id]
            c.progress(f"auto batch for {spec.id}: {batch} (" + ", ".join(
                f"{t['batch']}: {'OOM' if t.get('oom') else format(t['items_per_s'], '.0f') + '/s'}"
                for t in trials) + ")")
        return self.run.auto_batches[spec.id]

    @property
    def factory(self) -> VariantFactory:
        """Made on first use (it reads the candidate and data); `made_factory` asks without making it."""
        if self.made_factory is None:
            self.made_factory = self._make_factory()
        return self.made_factory

    def _make_factory(self) -> VariantFactory:
        c = self.context
        samples, _ = c.thresholds.chosen(c.settings.calibration_samples, "calibration", "samples")
        seed = c.thresholds.calibration["seed"]
        return VariantFactory(
            c.candidate,
            c.registry.variants,
            self.cache,
            calibration=lambda: calibration_inputs(c.calibration_sets(), c.candidate.kind, samples, seed,
                                                   exclude=[*c.datasets, *c.validation_folder],
                                                   validation_queries=c.thresholds.accuracy_control["validation_queries"]),
            tuning=self.tuning,
            rebuild=c.settings.rebuild,
            device=c.device,
            threads=c.threads,
            progress=c.progress,
        )

    def tuning(self, spec: VariantSpec):
        """Accuracy-controlled variants: the variant's own MAP limit and the held-out validation split."""
        from quantgate.evaluation.tuning import Tuning

        c = self.context
        control = c.thresholds.accuracy_control
        validation = c.validation
        if spec.id in self.run.validation_cuts:  # the time guard's, to fit the budget (quantgate.session.timing)
            validation = validation_sample(validation, self.run.validation_cuts[spec.id])
        return Tuning(c.thresholds.quality_limits(spec.id)["reranking_map_max_loss"], control["max_trials"],
                      control["ranking_queries"], validation, c.settings.batch_size,
                      reference=self.store.reference_validation, encoding=c.encoding)

