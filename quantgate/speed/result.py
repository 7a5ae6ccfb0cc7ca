"""One speed measurement of a variant at one batch size, typed: what the speed gate hands to the verdict (gate
`speed-bN`) and to pytest-benchmark's extra_info, one record for both. `to_dict` writes the flat record summary.md,
`quantgate history` and merge read; `from_dict` reads it back."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# the record's keys that are not fields of their own: the phases' summary (PhaseTimer.summary) and the latency
# percentiles (bench.percentiles) are written flat beside the fields, as they always were
_NESTED = ("phases", "percentiles")
PERCENTILE_KEYS = ("latency_inputs", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99")  # bench.percentiles


@dataclass(frozen=True)
class SpeedResult:
    variant: str
    candidate_sha256: str
    kind: str
    device: str
    threads: int
    batch_size: int
    mean_tokens_per_item: float
    items_per_s: float
    tokens_per_s: float
    latency_ms_median: float
    speedup_vs_reference: float | None  # against the reference's items/s at the same batch in this run
    rss_mb: float
    peak_rss_mb: float
    artifact_mb: float
    machine: str
    shard: int | None
    gpu_peak_mb: float | None
    dtype: str | None  # torch variants' weights
    inference_precision: str | None  # OpenVINO's, read back from the compiled model
    phases: dict[str, Any] = field(default_factory=dict)  # where the time goes: quantgate.speed.phases
    percentiles: dict[str, float] = field(default_factory=dict)  # latency (batch 1) only
    raw_forward: dict[str, Any] | None = None  # the plain transformers forward on the same tensors, where it ran
    auto_batch_search: list[dict[str, Any]] | None = None  # --gate-speed-batch auto: the batches tried

    @classmethod
    def measured(cls, *, batch_size: int, median_s: float, tokens_per_item: float, reference_items_per_s: float | None,
                 **values: Any) -> SpeedResult:
        """Rates from the median round (pytest-benchmark's statistic of record), rounded as the record keeps them."""
        items_per_s = batch_size / median_s
        return cls(batch_size=batch_size, mean_tokens_per_item=round(tokens_per_item, 1),
                   items_per_s=round(items_per_s, 2), tokens_per_s=round(items_per_s * tokens_per_item, 1),
                   latency_ms_median=round(median_s * 1000, 3),
                   speedup_vs_reference=round(items_per_s / reference_items_per_s, 3) if reference_items_per_s
                   else None, **values)

    def to_dict(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NESTED}
        for optional in ("raw_forward", "auto_batch_search"):
            if record[optional] is None:
                del record[optional]
        return {**record, **self.phases, **self.percentiles}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> SpeedResult:
        """A record read back (verdict.json, a benchmark's extra_info): the fields by name, the percentiles by their
        `p..` keys, everything else is the phases' summary. Gate bookkeeping (passed, failures) is left out."""
        names = {f.name for f in fields(cls)} - set(_NESTED)
        skip = {"passed", "failures"}
        percentiles = {k: v for k, v in record.items() if k in PERCENTILE_KEYS}
        phases = {k: v for k, v in record.items() if k not in names | skip | set(percentiles)}
        values = {k: v for k, v in record.items() if k in names}
        values.setdefault("raw_forward", None)
        values.setdefault("auto_batch_search", None)
        return cls(**values, phases=phases, percentiles=percentiles)
