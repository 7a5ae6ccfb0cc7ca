"""Which backend can build which model: asked from the libraries where they say it, else a small table of
known-broken combinations, each with the library version, the symptom measured here and the public issue.

A variant a backend cannot build for the candidate's architecture is skipped with one line naming the library,
its version, the model type and the task, before any work starts: a library's limit is not the model failing
the gate. tests/test_architectures.py notices when a newer library removes the need for a table entry.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@dataclass(frozen=True)
class ModelInfo:
    """What decides whether a backend can build the candidate: its transformers model type and architecture,
    and the task sentence-transformers loads it with."""

    model_type: str
    architecture: str
    task: str  # sentence-transformers' transformer_task: feature-extraction, sequence-classification, text-generation
    path: str = ""  # the candidate's folder: a backend that needs more than the type reads its files there

    @property
    def export_task(self) -> str:
        """The task name Optimum's exporters use for it."""
        return {"sequence-classification": "text-classification"}.get(self.task, self.task)

    def describe(self) -> str:
        return f"model type {self.model_type} ({self.architecture or 'no architectures'}), task {self.export_task}"


def model_info(path: Path, kind: str) -> ModelInfo:
    """Read from the candidate's config.json and sentence-transformers config (no model is loaded)."""
    config = _json(path / "config.json")
    architecture = (config.get("architectures") or [""])[0]
    if kind == "embedder":
        task = "feature-extraction"
    elif architecture.endswith("ForCausalLM"):
        task = "text-generation"  # a CrossEncoder over a causal LM: sentence-transformers' LogitScore head
    else:
        task = "sequence-classification"
    return ModelInfo(str(config.get("model_type", "")), architecture, task, str(path))


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def library_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@cache
def export_tasks(exporter: str, model_type: str) -> frozenset[str] | None:
    """The tasks Optimum's `exporter` ("onnx" or "openvino") can export for `model_type` (its TasksManager, once
    the exporter's model configs are registered), or None for a model type it does not know."""
    from optimum.exporters.tasks import TasksManager

    if exporter == "onnx":
        import optimum.exporters.onnx.model_configs
    else:
        import optimum.exporters.openvino.model_configs  # noqa: F401 -- registers the OpenVINO export configs
    try:
        return frozenset(TasksManager.get_supported_tasks_for_model_type(model_type, exporter=exporter,
                                                                         library_name="transformers"))
    except KeyError:
        return None


def export_reason(exporter: str, package: str, info: ModelInfo) -> str | None:
    """Why Optimum's exporter cannot export this model for its task, or None."""
    tasks = export_tasks(exporter, info.model_type)
    if tasks is not None and info.export_task in tasks:
        return None
    has = f"it exports {', '.join(sorted(tasks))}" if tasks else "it knows no such model type"
    return (f"{package} {library_version(package)} has no {exporter.upper() if exporter == 'onnx' else 'OpenVINO'} "
            f"export for {info.describe()} ({has})")


@cache
def ort_optimization_reason(model_type: str) -> str | None:
    """Why Optimum's ORTOptimizer refuses to optimize `model_type` (the check it runs before optimizing), or None."""
    from optimum.onnxruntime.utils import ORTConfigManager

    try:
        ORTConfigManager.check_optimization_supported_model(model_type, None)
    except (NotImplementedError, KeyError) as err:
        return str(err).split(" Only ", 1)[0]  # its list of 40 model types is not the user's question
    return None


@dataclass(frozen=True)
class KnownBroken:
    """A combination a library cannot build at the pinned version: measured here, reported upstream."""

    variants: str  # glob over variant ids
    model_types: tuple[str, ...]  # empty: any model type
    package: str
    versions: str  # the versions it was measured on, comma-separated
    symptom: str
    issue: str  # the public issue
    tasks: tuple[str, ...] = ()  # sentence-transformers' transformer_task; empty: any task
    signature: str = ""  # what the failure says at that version (tests/test_architectures.py checks it still does)

    def applies(self, variant: str, info: ModelInfo) -> bool:
        return (fnmatch.fnmatch(variant, self.variants)
                and (not self.model_types or info.model_type in self.model_types)
                and (not self.tasks or info.task in self.tasks)
                and library_version(self.package) in self.versions.split(","))

    def reason(self, info: ModelInfo) -> str:
        return (f"{self.package} {library_version(self.package)} cannot build {info.describe()}: {self.symptom} "
                f"({self.issue})")


KNOWN_BROKEN: tuple[KnownBroken, ...] = (
    KnownBroken("inc-int8*", ("qwen3", "qwen2", "llama", "mistral"), "neural_compressor_pt", "3.10",
                "its PT2E export (torch.export under transformers 4.57) fails in the vmap-based attention-mask code "
                "of decoder models (RuntimeError from functorch's gen_vmap_plumbing)",
                "huggingface/transformers#42721, fixed in transformers 5", signature="vmapped"),
    KnownBroken("inc-int8*", ("gemma3_text", "gemma2", "gemma"), "neural_compressor_pt", "3.10",
                "its PT2E export (torch.export) refuses the dynamic sequence length: the sliding-window mask allows "
                "fewer tokens than the length the gate declares (a dynamic-shape constraint violation)",
                "pytorch/pytorch#124502", signature="Failed to export the model for quantization"),
    KnownBroken("onnx*", (), "optimum-onnx", "0.1.0",
                "sentence-transformers loads a causal-LM CrossEncoder (LogitScore head) through ORTModelForCausalLM, "
                "whose export infers the sentence_transformers library from the folder and has no text-generation task "
                "for it (KeyError: 'Unknown task: text-generation')", "measured here; no public issue found",
                tasks=("text-generation",), signature="Unknown task: text-generation"),
    KnownBroken("openvino-qint8*", (), "optimum-intel", "1.27.0",
                "sentence-transformers loads a causal-LM CrossEncoder as OVModelForCausalLM, a stateful KV-cache IR "
                "(beam_idx input, state kept between calls); the gate's static int8 calibration feeds it single "
                "stateless samples, which the CPU plugin refuses ('beam idx batch: 0 is not equal to batch of state: "
                "1'). The f32 and bf16 IR are gated", "a quantgate limit; the same CPU-plugin check: "
                "openvinotoolkit/openvino.genai#2069", tasks=("text-generation",), signature="beam idx batch"),
)


def known_reason(variant: str, info: ModelInfo) -> str | None:
    for entry in KNOWN_BROKEN:
        if entry.applies(variant, info):
            return entry.reason(info)
    return None
