"""Checks: each returns a message when a limit is crossed, or None (pytest-benchmark's
RegressionCheck contract). A gate test collects every message and asserts there are none,
so one failure lists every limit crossed."""

from __future__ import annotations

from quantgate.agreement import AgreementResult
from quantgate.config import AGREEMENT_METRICS


def fails(metric: str, value: float, limit: float, direction: str) -> str | None:
    if direction == "max" and value > limit:
        return f"{metric} = {value:.4g} > limit {limit:.4g}"
    if direction == "min" and value < limit:
        return f"{metric} = {value:.4g} < limit {limit:.4g}"
    return None


def agreement_failures(result: AgreementResult, limits: dict[str, float]) -> list[str]:
    messages = []
    for metric, limit in limits.items():
        if metric not in result.metrics:
            continue
        message = fails(metric, result.metrics[metric], limit, AGREEMENT_METRICS[metric])
        if message:
            messages.append(f"[{result.dataset}] {message}")
    return messages


def describe_worst(result: AgreementResult) -> str:
    lines = [f"  worst pairs on {result.dataset} (reference -> variant):"]
    for w in result.worst:
        lines.append(f"    {w['reference']:.4f} -> {w['variant']:.4f}  q: {w['query']!r}  p: {w['passage']!r}")
    return "\n".join(lines)
