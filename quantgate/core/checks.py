"""The one check contract: a limit crossed gives a message, a limit kept gives None (pytest-benchmark's
RegressionCheck.fails). Agreement limits, the speed rule and quality decisions all report through it, so
a gate test collects every message and one failure lists every limit crossed."""

from __future__ import annotations


def fails(metric: str, value: float, limit: float, direction: str) -> str | None:
    if direction == "max" and value > limit:
        return f"{metric} = {value:.4g} > limit {limit:.4g}"
    if direction == "min" and value < limit:
        return f"{metric} = {value:.4g} < limit {limit:.4g}"
    return None


def crossed(values: dict[str, float], limits: dict[str, float], directions: dict[str, str], where: str) -> list[str]:
    """Every limit in `limits` that `values` crosses, as '[where] metric = v > limit l'."""
    return [f"[{r['dataset']}] {r['message']}" for r in crossed_records(values, limits, directions, where)]


def crossed_records(values: dict[str, float], limits: dict[str, float], directions: dict[str, str],
                    where: str) -> list[dict]:
    """The same, structured for the verdict: metric, value, limit, direction, data set, message."""
    records = []
    for metric, limit in limits.items():
        if metric in values and (message := fails(metric, values[metric], limit, directions[metric])):
            records.append({"metric": metric, "value": values[metric], "limit": limit,
                            "direction": directions[metric], "dataset": where, "message": message})
    return records
