"""A variant's life in a gate run: all its gates run together (the plugin orders them so), then its model is
released and the verdict is written, marked incomplete, so a killed run keeps every finished variant and
the next run resumes from them (quantgate.results.resume); and the run's end: the verdict and reports written, a
complete verdict kept in the quality history. A part of GateSession (quantgate.session.core), which provides
context, run, factory and cache."""

from __future__ import annotations

import time
from typing import Any

from quantgate import logs
from quantgate.core import memory
from quantgate.core.results import GateResult, VariantResult
from quantgate.reporting.report import write_reports
from quantgate.results import resume
from quantgate.results.history import keep
from quantgate.results.verdict import decision_of
from quantgate.variants.factory import skip_reason
from quantgate.variants.registry import VariantSpec, untuned


class VariantLifecycle:
    # -- what cannot run here: the model's architecture, the memory guard ------------------------
    def model_skip(self, spec: VariantSpec) -> str | None:
        """Why no backend library can build this variant for the candidate (recorded in the verdict), or None."""
        why = self.factory.model_skip(spec)
        if why:
            self.run.verdict.header.setdefault("skipped", {})[spec.id] = why
            self.context.progress(why)
        return why

    def memory_skip(self, spec: VariantSpec) -> str | None:
        """Why this variant is skipped by the memory guard (recorded in the verdict), or None."""
        if self.resumed_entry(spec) is not None:
            return None
        limit = self.context.settings.memory_limit_gb
        why = self.factory.memory_reason(spec, int(limit * memory.GB) if limit else None)
        if why:
            self.run.verdict.header.setdefault("skipped", {})[spec.id] = why
            self.context.progress(why)
        return why

    def tuning_skip(self, spec: VariantSpec) -> str | None:
        """Why an accuracy-controlled variant is not built: the plain int8 variant it starts from was decided pass in
        this run, so there is no loss for it to recover (it keeps layers in floating point only until the loss is
        within the same limit). Named by its exact id in --variants, it is built all the same."""
        plain = untuned(spec, self.context.registry.variants)
        entry = self.run.verdict.variants.get(plain.id) if plain is not None else None
        if entry is None or decision_of(entry) != "pass" or spec.id in self.context.settings.variants:
            return None
        why = (f"{plain.id} passed every gate: accuracy control has no int8 loss to recover (name {spec.id} in "
               "--variants to gate it anyway)")
        self.run.verdict.header.setdefault("skipped", {})[spec.id] = why
        self.context.progress(why)
        return why

    def same_model_result(self, spec: VariantSpec, gate_name: str) -> tuple[str, GateResult] | None:
        """(variant, its recorded `gate_name` result) of an earlier variant of this run that runs the same model as
        `spec` (the factory's `outputs_key`: files by content, how they are run); None when there is none."""
        if spec.id == self.context.reference.id or (mine := self.factory.outputs_key(spec)) is None:
            return None
        for vid, entry in self.run.verdict.variants.items():
            twin = self.context.registry.variants.get(vid)
            found = VariantResult.from_dict(vid, entry).gates.get(gate_name)
            if vid != spec.id and twin is not None and found is not None \
                    and not found.numbers.get("same_model_as") and self.factory.outputs_key(twin) == mine:
                return vid, found
        return None

    # -- started, finished -----------------------------------------------------------------------
    def variant_started(self, variant: str) -> None:
        self.run.current = variant
        self.run.started[variant] = time.perf_counter()
        self.run.sampler.start()

    def variant_finished(self, variant: str) -> None:
        """Release the variant, record its peak memory and write the verdict so far. Called by the plugin after
        the variant's last test. The reference is released too: later variants are compared with its scores
        and timings, which are kept (its scores in the cache); holding its model through every other build
        cost the whole of its weights at each build's peak."""
        self.run.current = None
        peak = self.run.sampler.stop()  # also for a variant skipped before its tests ran
        spec = self.context.registry.variants.get(variant)
        # the reference too when a team's check loaded it beside this variant (gate_reference on new inputs)
        loaded = [s for s in (spec, self.context.reference) if s is not None and self._release(s)]
        if not loaded:
            memory.release()
        entry = self.run.verdict.variants.get(variant)
        if spec is None or entry is None:
            return
        if variant not in self.run.resumed:
            entry["memory"] = {"peak_rss_mb": round(peak / memory.MB, 1),
                               "sampled_every_s": memory.SAMPLE_SECONDS,
                               "rss_after_release_mb": round(memory.rss() / memory.MB, 1),
                               "released": spec in loaded}
            entry["wall_seconds"] = round(time.perf_counter() - self.run.started.get(variant, time.perf_counter()), 1)
            entry["resume_key"] = resume.variant_key(self.context, self.factory, spec)
            self.record_time(spec, entry)
        self.run.verdict.header["peak_rss_mb"] = round(memory.process_peak() / memory.MB, 1)
        finished = self.run.verdict.header.setdefault("finished", [])
        if variant not in finished:
            finished.append(variant)
        self.write_partial()

    def _release(self, spec: VariantSpec) -> bool:
        return self.made_factory is not None and self.made_factory.release(spec)

    def write_partial(self) -> None:
        """verdict.json (`complete: false`) and summary.md, atomically; an xdist worker writes its own
        verdict.<worker>.json (the controller merges them at the end)."""
        from quantgate.reporting.report import write_reports  # noqa: PLC0415 -- matplotlib only once a verdict is written

        self._attach_artifacts()
        worker = self.context.settings.worker_id
        if worker:
            self.run.verdict.write(self.context.settings.report_dir, False, name=f"verdict.{worker}.json")
            return
        path = self.run.verdict.write(self.context.settings.report_dir, False)
        write_reports(self.run.verdict.to_dict(False), path.parent, final=False)

    # -- resuming ---------------------------------------------------------------------------------
    def load_saved(self) -> None:
        """Read what an incomplete earlier run finished (once, at resolve)."""
        if not self.context.settings.resume:
            return
        self.run.saved, sources = resume.saved_variants(self.context.settings.report_dir)
        if self.run.saved:
            self.context.progress(f"resuming: {len(self.run.saved)} finished variant(s) in {', '.join(sources)}; "
                                  "each is taken when its artifact and inputs are unchanged (--gate-no-resume "
                                  "computes everything)")

    def resumed_entry(self, spec: VariantSpec) -> dict[str, Any] | None:
        """The saved entry of a variant this run resumes, put into this run's verdict on first use."""
        if spec.id in self.run.resumed:
            return self.run.resumed[spec.id]
        saved = self.run.saved.get(spec.id)
        if saved is None or saved.get("resume_key") != resume.variant_key(self.context, self.factory, spec):
            return None
        self.run.resumed[spec.id] = saved
        self.run.verdict.variants[spec.id] = saved
        self.run.verdict.header.setdefault("resumed", []).append(spec.id)
        self.context.progress(f"{spec.id}: resumed from the saved verdict (same artifact and inputs): not recomputed")
        return saved

    def resumed_format(self, spec: VariantSpec, format_id: str) -> dict[str, Any] | None:
        """A resumed variant's saved record of one stored format (None: judge it)."""
        entry = self.resumed_entry(spec)
        return None if entry is None else VariantResult.from_dict(spec.id, entry).formats.get(format_id)

    def resumed_gate(self, spec: VariantSpec, gate_name: str) -> GateResult | None:
        entry = self.resumed_entry(spec)
        return None if entry is None else VariantResult.from_dict(spec.id, entry).gates.get(gate_name)

    # -- what went wrong ----------------------------------------------------------------------
    def log_failure(self, variant: str, gate_name: str, excinfo, sections, decided: bool) -> str:
        """A failed or crashed gate's traceback and captured output, into the report's log file; where it is."""
        path = logs.attach(self.context.settings.report_dir)
        logs.write_failure(path, variant, gate_name, excinfo, sections)
        return str(path)

    def unaccounted(self) -> list[str]:
        """Every variant whose tests were collected ends with a row: its results, a skip with the reason (this
        machine, the model's architecture, the memory guard: put in the header here), or a failure saying no gate
        recorded anything (the variants returned: the plugin records their row before `finish`)."""
        skipped = self.run.verdict.header.setdefault("skipped", {})
        silent = []
        for variant in self.run.expected:
            if variant in self.run.verdict.variants or variant in skipped or variant not in self.context.owned:
                continue
            why = skip_reason(self.context.registry.variants[variant], self.context.device)
            if why:
                skipped[variant] = why
            elif variant in self.run.ran:
                silent.append(variant)
        return silent

    # -- the end of a run -------------------------------------------------------------------
    def finish(self, complete: bool) -> list[str]:
        """Bind each variant to its artifact, write verdict.json, summary.md and pareto.png (atomically);
        the lines to show. Nothing is written when no gate test ran (and no regression was decided)."""
        self._attach_artifacts()
        lines = []
        if self.run.verdict.variants or "regression" in self.run.verdict.header:  # the regression gate alone too
            path = self.run.verdict.write(self.context.settings.report_dir, complete)
            write_reports(self.run.verdict.to_dict(complete), path.parent)
            lines.append(f"verdict: {path}{'' if complete else ' (incomplete run: nothing passes)'}")
            for partial in path.parent.glob(resume.PARTIAL_GLOB) if complete else ():  # workers', merged above
                partial.unlink(missing_ok=True)
            if self.run.resumed:
                lines.append(f"resumed (not recomputed): {', '.join(self.run.resumed)}")
            if complete and not self.context.settings.shard:  # a sharded run is kept once merged (quantgate merge)
                lines.append(f"kept in the quality history: {keep(path, self.context.history_dir)}")
        built, taken = self.builds()
        if built + taken:
            lines.append(f"artifacts built this run: {built}; from cache: {taken} ({self.cache.root})")
        return lines

    def worker_payload(self) -> dict[str, Any]:
        """xdist worker: what the controller folds into the run's one verdict (GateRun.fold_worker)."""
        self._attach_artifacts()
        built, taken = self.builds()
        return {"verdict": self.run.verdict.export(), "built": built, "taken": taken}

    def _attach_artifacts(self) -> None:
        factory = self.made_factory
        for vid, artifact in factory.artifacts.items() if factory is not None else ():
            if vid in self.run.verdict.variants:
                self.run.verdict.attach_artifact(vid, str(artifact.path), artifact.manifest, factory.runtime.get(vid))

    def builds(self) -> tuple[int, int]:
        """(built, taken from the cache) in this process, plus what xdist workers reported."""
        built = taken = 0
        if self.made_factory is not None:
            built = self.made_factory.built_count()
            taken = len(self.made_factory.build_log) - built
        return built + self.run.worker_builds[0], taken + self.run.worker_builds[1]
