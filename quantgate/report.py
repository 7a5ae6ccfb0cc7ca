"""Reports a person looks at: markdown tables and matplotlib pictures."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from quantgate.bench import HistoryPoint


def _series(points: list[HistoryPoint], last: int) -> dict[tuple[str, int], list[HistoryPoint]]:
    series: dict[tuple[str, int], list[HistoryPoint]] = defaultdict(list)
    for p in points:
        series[(p.variant, p.batch)].append(p)
    return {k: v[-last:] for k, v in sorted(series.items())}


def history_table(points: list[HistoryPoint], last: int = 10) -> str:
    rows = ["| variant | batch | runs | latest items/s | median items/s (these runs) | latest latency ms | history (items/s, oldest first) |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for (variant, batch), series in _series(points, last).items():
        values = [p.items_per_s for p in series]
        median = sorted(values)[len(values) // 2]
        rows.append(f"| {variant} | {batch} | {len(series)} | {values[-1]:.1f} | {median:.1f} | "
                    f"{series[-1].median_s * 1000:.1f} | {' '.join(f'{v:.1f}' for v in values)} |")
    return "\n".join(rows)


def history_plot(points: list[HistoryPoint], path: Path, last: int = 10) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(points, last)
    fig, (thr, lat) = plt.subplots(1, 2, figsize=(13, 5))
    for (variant, batch), runs in series.items():
        x = list(range(1, len(runs) + 1))
        if batch == 1:
            lat.plot(x, [p.median_s * 1000 for p in runs], marker="o", label=variant)
        else:
            thr.plot(x, [p.items_per_s for p in runs], marker="o", label=f"{variant} (b{batch})")
    thr.set(title="Throughput (higher is better)", xlabel="run (oldest first)", ylabel="items/s")
    lat.set(title="Latency, batch 1 (lower is better)", xlabel="run (oldest first)", ylabel="median ms")
    for ax in (thr, lat):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
