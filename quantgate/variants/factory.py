"""The variant factory: builds (or takes from the cache) and loads every variant of a candidate."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quantgate import backends
from quantgate.backends import runtime_facts
from quantgate.backends.common import BuildContext
from quantgate.core import machine
from quantgate.core.cache import Artifact, ArtifactCache, cache_key
from quantgate.core.candidate import Candidate, upcast_activation
from quantgate.evaluation.data import inputs_fingerprint
from quantgate.logs import logger, root_cause
from quantgate.variants.registry import VariantSpec, backend_of

# 2: INC archives without pickled example inputs; 3: the reference is the candidate's own files, not a saved copy
ARTIFACT_FORMAT = "quantgate-artifact/3"
Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A variant failed to build: a gate failure, never a skip."""


def skip_reason(spec: VariantSpec, device: str) -> str | None:
    """Why `spec` cannot run on this machine and device, or None."""
    for requirement in spec.requires:
        own = getattr(backend_of(spec), "REQUIREMENTS", {}).get(requirement)  # e.g. OpenVINO's cpu-bf16
        why = own() if own is not None else machine.capability_missing(requirement)
        if why:
            return f"{spec.id} {why}"
    return backend_of(spec).skip_reason(spec, device)


class VariantFactory:
    def __init__(
        self,
        candidate: Candidate,
        variants: dict[str, VariantSpec],
        cache: ArtifactCache,
        *,
        calibration: Callable[[], tuple[list, str]] | None = None,
        tuning: Callable[[VariantSpec], Any] | None = None,
        rebuild: bool = False,
        device: str = "cpu",
        threads: int | None = None,
        progress: Progress | None = None,
    ):
        self.candidate = candidate
        self.variants = variants
        self.cache = cache
        self._calibration_fn = calibration
        self._calibration: tuple[list, str] | None = None
        self._tuning_fn = tuning
        self._tunings: dict[str, Any] = {}
        self.rebuild = rebuild
        self.device = device
        self.threads = threads
        self.progress = progress or (lambda _msg: None)
        self._artifacts: dict[str, Artifact] = {}
        self._models: dict[str, Any] = {}
        self.runtime: dict[str, dict[str, Any]] = {}  # variant id -> what it ran with, read back at load
        self.build_log: list[dict[str, Any]] = []

    def skip_reason(self, spec: VariantSpec) -> str | None:
        return skip_reason(spec, self.device)

    def model_skip(self, spec: VariantSpec) -> str | None:
        """Why a backend cannot build this variant for the candidate's architecture (quantgate.backends.support), or
        None: asked of the variant and of every variant whose artifact it is built from or runs."""
        from quantgate.backends import support  # noqa: PLC0415 -- asks optimum's exporters: only once a variant is gated

        info = support.model_info(self.candidate.path, self.candidate.kind)
        source: VariantSpec | None = spec
        while source is not None:
            why = backend_of(source).model_skip(source, info)
            if why:
                return f"{spec.id} skipped: {why}"
            following = source.artifact_of or source.depends_on
            source = self.variants[following] if following else None
        return None

    # -- calibration ------------------------------------------------------------------
    def calibration(self) -> tuple[list, str]:
        if self._calibration is None:
            if self._calibration_fn is None:
                raise BuildError("static int8 variants need calibration data; none was configured")
            self._calibration = self._calibration_fn()
        return self._calibration

    def tuning(self, spec: VariantSpec):
        """The limit and validation split an accuracy-controlled variant is tuned against."""
        if not spec.tuned:
            return None
        if spec.id not in self._tunings:
            if self._tuning_fn is None:
                raise BuildError(f"{spec.id} is tuned against a quality limit; no validation data was configured")
            self._tunings[spec.id] = self._tuning_fn(spec)
        return self._tunings[spec.id]

    def retune(self, spec: VariantSpec) -> None:
        """Forget the variant's tuning (its key with it): the time guard has cut its validation split."""
        self._tunings.pop(spec.id, None)

    # -- building ---------------------------------------------------------------------
    def key(self, spec: VariantSpec) -> str:
        if spec.artifact_of:
            return self.key(self.variants[spec.artifact_of])
        dependency = self.key(self.variants[spec.depends_on]) if spec.depends_on else None
        calibration = inputs_fingerprint(self.calibration()[0]) if spec.calibrated else None
        tuning = self.tuning(spec).key_material() if spec.tuned else None
        if tuning and getattr(backend_of(spec), "TUNING_METHOD", None):  # how the backend tunes: a change rebuilds
            tuning["method"] = backend_of(spec).TUNING_METHOD
        return cache_key(
            ARTIFACT_FORMAT,
            self.candidate.content_hash,
            self.candidate.kind,
            self.candidate.trust_remote_code,
            spec.key_material(),
            dependency,
            calibration,
            machine.library_versions(backends.libraries()),
            *([tuning] if tuning else []),
        )

    def artifact(self, spec: VariantSpec) -> Artifact:
        if spec.id in self._artifacts:
            return self._artifacts[spec.id]
        if spec.artifact_of:  # the same files, loaded with this spec's runtime options: nothing to build or copy
            self._artifacts[spec.id] = self.artifact(self.variants[spec.artifact_of])
            return self._artifacts[spec.id]
        dependency = self.artifact(self.variants[spec.depends_on]) if spec.depends_on else None
        calibration = self.calibration() if spec.calibrated else None
        ctx = BuildContext(
            self.candidate,
            spec,
            calibration=calibration[0] if calibration else None,
            dependency=dependency,
            device=self.device,
            threads=self.threads,
            tuning=self.tuning(spec),
        )
        key = self.key(spec)
        meta = {
            "spec": spec.to_dict(),
            "candidate": {"source": self.candidate.source, "sha256": self.candidate.content_hash,
                          "kind": self.candidate.kind},
            "libraries": machine.library_versions(backends.libraries()),
            "calibration": calibration[1] if calibration else None,
        }
        started = time.perf_counter()
        announced = False

        def build(out):
            nonlocal announced
            announced = True
            self.progress(f"building {spec.id}: {spec.description}")
            try:
                return backend_of(spec).build(ctx, out)
            except Exception as err:
                logger.exception("%s failed to build", spec.id)  # the library's traceback: the report's gate.log
                raise BuildError(f"{spec.id} failed to build: {root_cause(err)}") from err

        artifact = self.cache.get_or_build(spec.id, key, build, rebuild=self.rebuild, meta=meta)
        seconds = time.perf_counter() - started
        if announced:
            self.progress(f"built {spec.id} in {seconds:.1f}s -> {artifact.path}")
        self.build_log.append({"variant": spec.id, "built": artifact.built, "seconds": round(seconds, 2)})
        self._artifacts[spec.id] = artifact
        return artifact

    def load(self, spec: VariantSpec):
        """The loaded model (CrossEncoder or SentenceTransformer), once per run."""
        if spec.id not in self._models:
            artifact = self.artifact(spec)
            ctx = BuildContext(self.candidate, spec, device=self.device, threads=self.threads)
            if self.threads:
                import torch  # noqa: PLC0415 -- torch only once a model loads

                torch.set_num_threads(self.threads)
            try:
                model = backend_of(spec).load(ctx, artifact)
                self._models[spec.id] = upcast_activation(model) if self.candidate.kind == "reranker" else model
                asked = {k: v for k, v in backend_of(spec).runtime_options(ctx).items() if isinstance(v, (str, dict))}
                self.runtime[spec.id] = {**runtime_facts(model), **({"asked": asked} if asked else {}),
                                         **({"artifact_of": spec.artifact_of} if spec.artifact_of else {})}
            except Exception as err:
                logger.exception("%s failed to load", spec.id)
                raise BuildError(f"{spec.id} built but failed to load: {root_cause(err)}") from err
        return self._models[spec.id]

    def outputs_key(self, spec: VariantSpec) -> str | None:
        """What decides the built variant's outputs (its backend's `outputs_key`: files by content, how they are run),
        hashed; None when its backend does not say. Two variants with the same key score the same inputs the same."""
        hook = getattr(backend_of(spec), "outputs_key", None)
        if hook is None:
            return None
        ctx = BuildContext(self.candidate, spec, device=self.device, threads=self.threads)
        return cache_key(backend_of(spec).__name__, hook(ctx, self.artifact(spec)))

    def is_loaded(self, variant: str) -> bool:
        return variant in self._models

    def release(self, spec: VariantSpec) -> bool:
        """Drop a loaded variant (its ONNX Runtime session, OpenVINO compiled model or torch weights go with
        it): a run holds the variant in hand, not the whole matrix. False if it was not loaded."""
        model = self._models.pop(spec.id, None)
        if model is None:
            return False
        backend_of(spec).release(model)
        del model  # the last reference: collected below (a reference held here kept 0.43 GB of an ORT session)
        from quantgate.core import memory  # noqa: PLC0415 -- psutil only once a variant is gated

        memory.release(settled=not self._models)
        return True

    def is_cached(self, spec: VariantSpec) -> bool:
        """Whether the artifact (and every artifact it is built from) is in the cache or built this run."""
        if spec.id in self._artifacts:
            return True
        if spec.artifact_of:
            return self.is_cached(self.variants[spec.artifact_of])
        if spec.depends_on and not self.is_cached(self.variants[spec.depends_on]):
            return False
        return self.cache.has(spec.id, self.key(spec))

    def memory_reason(self, spec: VariantSpec, limit: int | None) -> str | None:
        """The memory guard: why `spec` cannot be built and loaded here, or None (quantgate.core.memory.guard)."""
        from quantgate.core import memory  # noqa: PLC0415 -- psutil only once a variant is gated

        if spec.id in self._models:
            return None
        weights = self.candidate.fp32_weight_bytes
        source = self.variants[spec.artifact_of] if spec.artifact_of else spec  # what is built
        estimate = memory.Estimate(backend_of(source).memory_estimate(source, weights).build,
                                   backend_of(spec).memory_estimate(spec, weights).load)
        if source.depends_on and not self.is_cached(self.variants[source.depends_on]):  # built first, here
            dependency = self.variants[source.depends_on]
            first = backend_of(dependency).memory_estimate(dependency, weights).build
            estimate = memory.Estimate(max(estimate.build, first), estimate.load)
        return memory.guard(spec.id, estimate, self.is_cached(spec) and not self.rebuild, limit)

    @property
    def artifacts(self) -> dict[str, Artifact]:
        """The artifacts this run built or took from the cache, by variant id."""
        return dict(self._artifacts)

    def built_count(self) -> int:
        return sum(1 for entry in self.build_log if entry["built"])
