"""What a run judged against: every setting that changes a decision, as one typed record in the verdict (`judged`).

Merge and resume compare it, and refuse (merge, naming the setting) or recompute (resume) where two runs differ; a
verdict given as --gate-baseline is checked on its own terms (same data and --gate-top-k: its prompts are its own).
Conditions of the measurement itself (machine, threads, device) are compared by resume on top of it; they do not
change what a quality decision means.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantgate.core.candidate import file_sha256

# a human name for each setting, as the refusal says it
NAMES = {"thresholds_sha256": "thresholds (sha256)", "data": "data (sha256 of each set)", "tasks": "mteb tasks",
         "max_queries": "--gate-max-queries", "top_k": "--gate-top-k", "retrieval": "retrieval (--gate-no-retrieval)",
         "encoding": "prompts and similarity", "embedding_formats": "stored formats (--gate-embedding-formats)",
         "embedding_formats_for": "--gate-embedding-formats-for",
         "embedding_ranges_sha256": "stored-format ranges (--gate-embedding-ranges)",
         "calibration_samples": "--gate-calibration-size", "speed_batches": "speed batch sizes",
         "speed_rounds": "--gate-speed-rounds", "latency_inputs": "--gate-latency-inputs"}


@dataclass(frozen=True)
class JudgedSettings:
    thresholds_sha256: str
    data: tuple[str, ...]
    tasks: tuple[str, ...] = ()
    max_queries: int | None = None
    top_k: int | None = None
    retrieval: bool = True
    encoding: str = ""  # the encoding's prompts and similarity, as JSON (quantgate.evaluation.encoding)
    embedding_formats: tuple[str, ...] = ()  # the stored formats judged (none for a reranker)
    embedding_formats_for: str = "passed"
    embedding_ranges_sha256: str | None = None
    calibration_samples: int | None = None
    speed_batches: tuple[int, ...] = ()
    speed_rounds: int = 0
    latency_inputs: int = 0

    @classmethod
    def of(cls, context, formats: list[str]) -> JudgedSettings:
        """This run's, from its resolved context; `formats`: the stored-format ids it judges."""
        s = context.settings
        ranges = Path(s.embedding_ranges) if s.embedding_ranges else None
        encoding = context.encoding.to_dict()
        encoding.pop("source", None)  # where the prompts came from does not change them
        return cls(
            thresholds_sha256=context.thresholds.sha256, data=tuple(d.fingerprint() for d in context.datasets),
            tasks=tuple(s.tasks), max_queries=s.max_queries, top_k=s.top_k, retrieval=s.retrieval,
            encoding=json.dumps(encoding, sort_keys=True), embedding_formats=tuple(formats),
            embedding_formats_for=s.embedding_formats_for,
            embedding_ranges_sha256=file_sha256(ranges) if ranges and ranges.is_file() else None,
            calibration_samples=s.calibration_samples, speed_batches=tuple(s.speed_batches),
            speed_rounds=s.speed_rounds, latency_inputs=s.latency_inputs)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> JudgedSettings | None:
        """None for a verdict written before the record existed (or a malformed one): nothing to compare."""
        if not isinstance(data, dict):
            return None
        fields = {f.name: f for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})
        except TypeError:
            return None

    def differences(self, other: JudgedSettings) -> list[str]:
        """The settings that differ, each as "NAME (this vs other)"."""
        out = []
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine != theirs:
                out.append(f"{NAMES.get(field.name, field.name)} ({_show(mine)} vs {_show(theirs)})")
        return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    if isinstance(value, str) and value.startswith("{"):
        return "another encoding" if len(value) > 40 else value
    return "none" if value is None else str(value)
