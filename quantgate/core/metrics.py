"""Every metric the gate limits, declared once: its name, the gate that checks it, its direction, its
default limit per model kind and, for quality, where mteb keeps it. Adding a metric is one entry here
(and computing it); thresholds.toml's checking, the defaults and the checks read this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    gate: str  # "agreement" | "quality"
    direction: str  # "max": the value stays at or below its limit; "min": at or above
    reranker: float | None  # default limit for rerankers (None: no limit unless thresholds.toml sets one)
    embedder: float | None
    mteb_key: str | None = None  # quality: mteb's aggregate score key
    per_query_key: str | None = None  # quality: pytrec_eval's per-query key
    limit_key: str | None = None  # quality: the thresholds.toml key of its relative-loss limit


TABLE = (
    Metric("max_abs_error", "agreement", "max", 0.02, 0.02),  # one pair: grows with the number of pairs
    Metric("p99_abs_error", "agreement", "max", None, None),  # the same at any size; reported, not yet limited
    Metric("mean_abs_error", "agreement", "max", 0.005, 0.005),
    Metric("kendall_tau_mean", "agreement", "min", 0.98, 0.98),
    Metric("kendall_tau_worst", "agreement", "min", 0.9, 0.9),
    Metric("top1_agreement", "agreement", "min", 0.95, 0.95),
    Metric("top10_overlap", "agreement", "min", 0.95, 0.95),
    Metric("cosine_min", "agreement", "min", None, 0.99),  # embedders: per-text embedding cosine
    Metric("cosine_mean", "agreement", "min", None, 0.999),
    # one pair alone vs in padded batches (quantgate.evaluation.invariance): rerankers' scores, embedders' pair cosine
    Metric("batch_max_abs_error", "agreement", "max", 0.02, 0.02),
    # quality: the limit is on the relative loss (reference - variant) / reference, decided by
    # quantgate.decisions.decision
    Metric("map", "quality", "max", 0.01, 0.01, "map_at_1000", "map_cut_1000", "reranking_map_max_loss"),
    Metric("ndcg_at_10", "quality", "max", 0.0155, 0.0155, "ndcg_at_10", "ndcg_cut_10", "retrieval_ndcg10_max_loss"),
)
AGREEMENT = {m.name: m for m in TABLE if m.gate == "agreement"}
QUALITY = {m.name: m for m in TABLE if m.gate == "quality"}
AGREEMENT_METRICS: dict[str, str] = {name: m.direction for name, m in AGREEMENT.items()}  # metric -> direction


def agreement_defaults(kind: str) -> dict[str, float]:
    return {m.name: getattr(m, kind) for m in AGREEMENT.values() if getattr(m, kind) is not None}
