"""GateSession: every setting of a gate run, resolved once (pytest_configure or the CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from quantgate import machine
from quantgate.cache import ArtifactCache, default_cache_dir
from quantgate.candidate import Candidate, resolve
from quantgate.config import Thresholds, load_thresholds
from quantgate.data import DataFormatError, EvalSet, calibration_inputs, default_data, validation_set
from quantgate.data import load as load_data
from quantgate.factory import VariantFactory
from quantgate.registry import REFERENCE_ID, Registry, VariantSpec
from quantgate.scoring import Scores, score
from quantgate.verdict import Verdict


@dataclass(frozen=True)
class GateSettings:
    """What the user asked for; GateSession turns it into resolved objects."""

    candidate: str | None = None
    kind: str = "auto"
    variants: tuple[str, ...] = ()
    cache_dir: str | None = None
    rebuild: bool = False
    data: tuple[str, ...] = ()
    calibration_data: tuple[str, ...] = ()  # folders whose train split calibrates static int8 (default: data)
    validation_data: str | None = None  # accuracy control: a folder of validation queries (default: held-out train)
    artifacts: tuple[tuple[str, str], ...] = ()  # (name, path) from --gate-artifact
    mutants: tuple[str, ...] = ()  # test-only injected regressions, NAME=key:value,... (--gate-mutant)
    thresholds: str | None = "thresholds.toml"
    device: str = "auto"
    trust_remote_code: bool = False
    batch_size: int = 32
    report_dir: str = "gate-report"
    calibration_samples: int | None = None  # None: thresholds.toml [calibration] samples
    max_queries: int | None = None  # quick runs: score only the first N test queries of each set
    top_k: int | None = None  # quick runs: only the first K candidates of each query
    threads: int | None = None  # one thread budget for every backend (default: all cores)
    speed_batches: tuple[int, ...] = (1, 32)  # latency (1) and throughput batch sizes
    speed_rounds: int = 5
    speed_compare: bool = False  # fail on a regression against this machine's history
    benchmark_storage: str = ".benchmarks"
    tasks: tuple[str, ...] = ()  # mteb task names, loaded from the hub (--gate-tasks)
    retrieval: bool = True  # embedders: also full-corpus retrieval (one more encoding pass per variant)
    shard: tuple[int, int] | None = None  # (I, N): run shard I of N of the selected variants
    dtype: str | None = None  # "auto": also gate the model in the dtype its config names (torch-auto)
    memory_budget_mb: float | None = None  # auto batch: the most memory a batch may take (default 80% of free GPU)


@dataclass
class GateSession:
    settings: GateSettings
    progress: Callable[[str], None] = field(default=lambda _msg: None)

    def __post_init__(self) -> None:
        # Resolve everything that can be wrong before any test runs: one clear error each.
        self.thresholds: Thresholds = load_thresholds(self.settings.thresholds)
        self.candidate: Candidate = resolve(self.settings.candidate, self.settings.kind, self.settings.trust_remote_code)
        self.registry = Registry()
        for name, path in self.settings.artifacts:
            self.registry.register(external_spec(name, path))
        from quantgate.backends.mutant import parse as parse_mutant

        for value in self.settings.mutants:
            self.registry.register(parse_mutant(value))
        if self.settings.dtype == "auto":
            from quantgate.registry import torch_auto

            self.registry.register(torch_auto())
        self.selected: list[VariantSpec] = self.registry.select(list(self.settings.variants) or None)
        if self.settings.shard:
            self.selected, self.owned = shard(self.selected, *self.settings.shard)
        else:
            self.owned = [s.id for s in self.selected]
        self.datasets: list[EvalSet] = [load_data(p) for p in self.settings.data] or [default_data()]
        if self.settings.validation_data:
            _ = self.validation  # a wrong folder, or one that shares queries with evaluation: said now
        self.device = resolve_device(self.settings.device)
        self.threads = self.settings.threads or os.cpu_count() or 1
        from quantgate.quality import hub_tasks

        self.hub_tasks = hub_tasks(list(self.settings.tasks))
        self.cache = ArtifactCache(self.settings.cache_dir or default_cache_dir())
        self.verdict = Verdict(self._verdict_header())
        self._scores: dict[tuple[str, str], Scores] = {}
        self.speed: dict[tuple[str, int], float] = {}  # (variant, batch) -> items/s in this run
        self.quality: dict[tuple[str, str, str], Any] = {}  # (variant, data set, task) -> TaskQuality
        self.worker_builds = (0, 0)  # (built, from cache) reported by pytest-xdist workers
        self.auto_batches: dict[str, tuple[int, list[dict]]] = {}  # variant -> (batch, search trials)

    @cached_property
    def speed_history(self) -> list:
        """Earlier runs on this machine from pytest-benchmark's storage (read before this run saves)."""
        from quantgate.bench import load_history, machine_key

        return load_history(self.settings.benchmark_storage, machine_key())

    def _verdict_header(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "candidate": {"source": c.source, "path": str(c.path), "sha256": c.content_hash, "kind": c.kind,
                          "kind_reason": c.kind_reason},
            "thresholds": {"path": str(self.thresholds.path) if self.thresholds.path else None,
                           "sha256": self.thresholds.sha256},
            "data": [{"name": d.name, "path": str(d.path), "sha256": d.fingerprint()} for d in self.datasets],
            "subset": {"max_queries": self.settings.max_queries, "top_k": self.settings.top_k},
            "device": self.device,
            "threads": self.threads,
            "shard": ({"index": self.settings.shard[0], "count": self.settings.shard[1], "owns": self.owned}
                      if self.settings.shard else None),
        }

    def evaluation_sets(self) -> list[EvalSet]:
        """Data sets with candidate lists: what agreement is measured on."""
        sets = [d for d in self.datasets if d.candidates]
        if not sets:
            raise DataFormatError("no --gate-data folder has a candidates.jsonl: agreement needs candidate lists")
        return sets

    def scores(self, spec: VariantSpec, dataset: EvalSet) -> Scores:
        """Scores of one variant on one data set, computed once per run and shared by every gate."""
        key = (spec.id, dataset.name)
        if key not in self._scores:
            if spec.id == REFERENCE_ID:  # shared by every worker and shard on this cache: computed once
                self._scores[key] = self._shared_reference(spec, dataset)
            else:
                self._scores[key] = self._score(spec, dataset)
            self.verdict.header.setdefault("scoring_seconds", {})[f"{spec.id}@{dataset.name}"] = \
                round(self._scores[key].seconds, 2)
        return self._scores[key]

    def _score(self, spec: VariantSpec, dataset: EvalSet) -> Scores:
        model = self.factory.load(spec)
        self.progress(f"scoring {spec.id} on {dataset.name}")
        result = score(model, self.candidate.kind, dataset, batch_size=self.settings.batch_size,
                       top_k=self.settings.top_k, max_queries=self.settings.max_queries,
                       retrieval_queries=self._retrieval_queries(dataset))
        self.progress(f"scored {spec.id} on {dataset.name}: {len(result.keys)} pairs in {result.seconds:.1f}s")
        return result

    def auto_batch(self, spec: VariantSpec) -> tuple[int, list[dict]]:
        """The throughput batch for `--gate-speed-batch auto`: the largest-throughput batch that fits
        the memory budget, backing off at the first out-of-memory (once per variant and run)."""
        if spec.id not in self.auto_batches:
            from quantgate import bench

            model = self.factory.load(spec)
            budget = bench.memory_budget(self.device, self.settings.memory_budget_mb)
            self.auto_batches[spec.id] = bench.find_batch(model, self.candidate.kind, self.evaluation_sets()[0],
                                                          self.device, budget)
            batch, trials = self.auto_batches[spec.id]
            self.progress(f"auto batch for {spec.id}: {batch} (" + ", ".join(
                f"{t['batch']}: {'OOM' if t.get('oom') else format(t['items_per_s'], '.0f') + '/s'}" for t in trials) + ")")
        return self.auto_batches[spec.id]

    def _retrieval_queries(self, dataset: EvalSet) -> list[str] | None:
        """Embedders evaluated on full-corpus retrieval: the corpus is encoded in the scoring pass."""
        if self.candidate.kind != "embedder" or not self.settings.retrieval:
            return None
        from quantgate.quality import retrieval_qids

        return [dataset.queries[q] for q in retrieval_qids(dataset, self.settings.max_queries)]

    def _shared_reference(self, spec: VariantSpec, dataset: EvalSet) -> Scores:
        from quantgate.cache import cache_key
        from quantgate.scoring import load_scores, save_scores

        s = self.settings
        name = cache_key(self.factory.key(spec), dataset.fingerprint(), s.top_k, s.max_queries, s.batch_size,
                         self._retrieval_queries(dataset))[:24]
        path = self.cache.root / "scores" / f"{spec.id}-{dataset.name}-{name}.npz"
        with self.cache.lock("scores", name):
            result = load_scores(path) if path.is_file() else None
            if result is None:
                result = self._score(spec, dataset)
                save_scores(result, path)
            else:
                self.progress(f"reference scores of {dataset.name} from {path}")
        return result

    @cached_property
    def factory(self) -> VariantFactory:
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
        from quantgate.tuning import Tuning

        control = self.thresholds.accuracy_control
        return Tuning(self.thresholds.quality_limits(spec.id)["reranking_map_max_loss"], control["max_trials"],
                      control["ranking_queries"], self.validation, self.settings.batch_size)

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
        c = self.candidate
        return [
            f"quantgate: candidate {c.source}",
            f"quantgate: kind {c.kind} ({c.kind_reason}); sha256 {c.content_hash}",
            f"quantgate: variants {', '.join(s.id for s in self.selected)}",
            *([f"quantgate: shard {self.settings.shard[0]}/{self.settings.shard[1]} owns {', '.join(self.owned)}"]
              if self.settings.shard else []),
            f"quantgate: thresholds {self.thresholds.path or 'built-in defaults'} (sha256 {self.thresholds.sha256[:12]})",
            f"quantgate: data {', '.join(f'{d.name} ({d.path})' for d in self.datasets)}",
            f"quantgate: cache {self.cache.root}{' (rebuild)' if self.settings.rebuild else ''}",
            f"quantgate: device {self.device}; cpu {machine.cpu_summary()}; threads {self.threads} (torch, ONNX Runtime intra-op, OpenVINO)",
            *([f"quantgate: calibration {self.factory.calibration()[1]}"] if any(s.calibrated for s in self.selected) else []),
            *([f"quantgate: accuracy control validates on {self.validation.name}: {len(self.validation.candidates)} queries "
               "held out from calibration and evaluation"] if any(s.tuned for s in self.selected) else []),
            "quantgate: libraries " + ", ".join(f"{k} {v}" for k, v in machine.library_versions().items()),
        ]


def shard(specs: list[VariantSpec], index: int, count: int) -> tuple[list[VariantSpec], list[str]]:
    """Shard `index` (1-based) of `count`: round-robin over the selection's order, so every run
    of the same selection splits it the same way. The reference runs in every shard (losses and
    speedups are measured against it in the same run); the shard that owns it reports it.
    Returns (what runs here, the ids this shard owns)."""
    owned = [s for i, s in enumerate(specs) if i % count == index - 1]
    reference = [s for s in specs if s.id == REFERENCE_ID and s not in owned]
    return reference + owned, [s.id for s in owned]


def external_spec(name: str, path: str) -> VariantSpec:
    from quantgate.backends.external import source_kind

    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"--gate-artifact {name}={path}: {path} does not exist")
    kind = source_kind(source)
    from quantgate.candidate import file_sha256, hash_dir

    digest = hash_dir(source) if source.is_dir() else file_sha256(source)
    return VariantSpec(
        id=name,
        family="external",
        precision="unknown",
        description=f"artifact built elsewhere ({kind}): {source}",
        options=(("path", str(source)), ("sha256", digest)),
    )


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--gate-device must be auto, cpu or cuda, not {device!r}")
    if device == "auto":
        return "cuda" if machine.has_cuda() else "cpu"
    if device == "cuda" and not machine.has_cuda():
        raise ValueError("--gate-device cuda: no CUDA GPU is visible on this machine; use --gate-device cpu")
    return device


def settings_from(**kwargs: Any) -> GateSettings:
    return GateSettings(**{k: v for k, v in kwargs.items() if v is not None})
