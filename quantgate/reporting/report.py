"""Reports a person looks at: markdown tables and matplotlib pictures."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from quantgate.reporting.figures import STYLE, save_figure
from quantgate.reporting.formats import format_plot
from quantgate.reporting.summary import _rows, summary_markdown
from quantgate.results import history
from quantgate.speed.bench import HistoryPoint
from quantgate.variants.registry import ordered

__all__ = ["history_plot", "history_table", "pareto_plot", "quality_history_plot", "save_figure", "summary_markdown",
           "write_reports"]


def _series(points: list[HistoryPoint], last: int) -> dict[tuple[str, int], list[HistoryPoint]]:
    series: dict[tuple[str, int], list[HistoryPoint]] = defaultdict(list)
    for p in points:
        series[(p.variant, p.batch)].append(p)
    return {k: v[-last:] for k, v in sorted(series.items())}


def history_table(points: list[HistoryPoint], last: int = 10) -> str:
    rows = ["| variant | batch | runs | latest items/s | median items/s (these runs) | latest latency ms "
            "| history (items/s, oldest first) |",
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
    return save_figure(fig, path)




def pareto_plot(verdict: dict, path: Path) -> Path | None:
    """Each variant's worst quality loss (relative to the limit) with its one-sided bounds as an error bar,
    against its throughput speedup; the limit as a line; decisions by colour and marker."""
    rows = [r for r in _rows(verdict) if r["speedup"] is not None and r["worst"] is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    limits = sorted({r["worst"]["limit"] * 100 for r in rows})
    for r in rows:
        w = r["worst"]
        loss, low, high = (v * 100 for v in (w["loss"], w["low"], w["high"]))
        top = max(limits) * 4 + 1  # an unbounded interval is drawn to the edge
        below, above = loss - max(low, -top), min(high, top) - loss
        color, marker = STYLE.get(r["decision"], ("grey", "o"))
        ax.errorbar(r["speedup"], loss, yerr=[[max(below, 0)], [max(above, 0)]], fmt=marker, color=color, ms=7,
                    capsize=3, lw=1)
    _label(ax, [(r["speedup"], r["worst"]["loss"] * 100, r["variant"]) for r in rows])
    for limit in limits:
        ax.axhline(limit, color="tab:red", ls="--", lw=1)
        ax.annotate(f"limit {limit:.2f}%", (ax.get_xlim()[1], limit), fontsize=7, color="tab:red", ha="right",
                    va="bottom")
    ax.axhline(0, color="grey", lw=0.8)
    handles = [plt.Line2D([], [], color=c, marker=m, ls="", label=d) for d, (c, m) in STYLE.items()]
    ax.legend(handles=handles, title="decision", fontsize=8, loc="upper left")
    ax.set(xlabel="throughput speedup vs torch-fp32 (× items/s at the throughput batch)",
           ylabel="worst relative quality loss, % of the reference (positive = worse)",
           title="Speed vs quality: point = observed loss, bar = one-sided bounds")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _label(ax, points: list[tuple[float, float, str]]) -> None:
    """Labels that do not overlap: each goes to the first free slot around its point, in display space."""
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    taken: list = []
    offsets = [(5, 4), (5, -10), (-5, 4), (-5, -10), (5, 14), (5, -20), (-5, 14), (-5, -20), (5, 24), (5, -30)]
    for x, y, text in sorted(points, key=lambda p: (p[0], p[1])):
        for dx, dy in offsets:
            label = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                                ha="left" if dx > 0 else "right")
            box = label.get_window_extent(renderer).expanded(1.02, 1.1)
            if not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            label.remove()
        else:
            taken.append(ax.annotate(text, (x, y), xytext=(5, 4), textcoords="offset points",
                                     fontsize=7).get_window_extent(renderer))


def write_reports(verdict: dict, report_dir: Path, final: bool = True) -> list[Path]:
    """summary.md; at the end of a run also pareto.png, formats.png (stored formats) and GitHub's step summary
    (after each variant: summary.md only)."""
    import os

    from quantgate.core.cache import write_text_atomic

    report_dir.mkdir(parents=True, exist_ok=True)
    markdown = summary_markdown(verdict)
    written = [write_text_atomic(report_dir / "summary.md", markdown)]
    if not final:
        return written
    for plot in (pareto_plot(verdict, report_dir / "pareto.png"), format_plot(verdict, report_dir / "formats.png")):
        if plot:
            written.append(plot)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(markdown)
    return written


def quality_history_plot(runs: list[dict[str, Any]], all_series: list[history.Series], path: Path,
                         last: int) -> Path:
    """One panel per data set and metric (each variant over the runs, a red MARK on a decided regression),
    and one of throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = len(all_series) + 1
    fig, axes = plt.subplots(panels, 1, figsize=(9, 3.2 * panels), squeeze=False)
    for ax, s in zip(axes[:, 0], all_series):
        cols = list(range(len(s.runs)))[-last:]
        for variant, values in s.values.items():
            xs = [s.runs[c] + 1 for c in cols if values[c] is not None]
            ax.plot(xs, [values[c] for c in cols if values[c] is not None], marker="o", label=variant)
            bad = [c for c in cols if (variant, c) in s.marks]
            ax.scatter([s.runs[c] + 1 for c in bad], [values[c] for c in bad], color="tab:red", marker="v", s=90,
                       zorder=3)
        ax.set_title(f"{s.dataset} {s.task} {s.metric} (red {history.MARK}: decided regression vs the run before)")
    speeds = [history.throughput(r) for r in runs]
    ax = axes[-1, 0]
    for variant in ordered({v for s in speeds for v in s}):
        xs = [i + 1 for i, s in enumerate(speeds) if variant in s][-last:]
        ax.plot(xs, [speeds[x - 1][variant] for x in xs], marker="o", label=variant)
    ax.set_title("throughput, items/s (largest batch timed)")
    for ax in axes[:, 0]:
        ax.set_xlabel("run")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=7, ncol=2)
    return save_figure(fig, path)
