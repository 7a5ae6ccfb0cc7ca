"""Quality over runs: every complete verdict is kept, content-addressed, and `quantgate history` shows each
variant's quality per data set and metric over the runs, beside its speed, and marks the decided regressions
between consecutive runs of the same data (the regression gate's rule on the per-query values both verdicts
recorded: quantgate.decisions.decision, one look at the queries both scored).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantgate.core.cache import write_text_atomic
from quantgate.core.gates import Gate
from quantgate.core.results import RunResult
from quantgate.decisions.decision import Decision, Sequence, evaluate
from quantgate.results.verdict import VerdictFormatError
from quantgate.results.verdict import read as read_verdict
from quantgate.variants.registry import ordered

MARK = "▼"  # a decided regression against the previous run of the same data


def keep(verdict: Path, folder: Path) -> Path:
    """A copy of a written verdict named by the sha256 of its bytes (the same run is kept once), written
    atomically: an interrupted copy is never read as a run."""
    data = verdict.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    path = Path(folder) / f"verdict-{digest[:16]}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, data.decode())
    return path


def load(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every kept complete verdict, oldest first, and one line for each file that is not one (skipped)."""
    runs, skipped = [], []
    for path in sorted(Path(folder).glob("verdict-*.json")):
        try:
            data = read_verdict(path)
        except VerdictFormatError as err:
            skipped.append(f"{path.name}: {err}")
            continue
        if data.get("complete"):
            runs.append(data)
    runs.sort(key=lambda v: v.get("written_at", ""))
    return runs, skipped


@dataclass(frozen=True)
class Series:
    """One data set, task and metric: each variant's value per run (None where it was not gated)."""

    dataset: str
    sha256: str
    task: str
    metric: str
    runs: list[int]  # indices into the run list
    values: dict[str, list[float | None]]  # variant -> one value per run
    marks: dict[tuple[str, int], Decision]  # (variant, position) -> its decided regression against the one before


def _tasks(run: RunResult, variant: str) -> list[dict[str, Any]]:
    return run.variant(variant).numbers(Gate.QUALITY).get("tasks", [])


def series(runs: list[dict[str, Any]], limit: float, confidence: float, min_queries: int) -> list[Series]:
    """Every (data set, task, metric) the runs measured, data sets told apart by their content hash."""
    keys: dict[tuple[str, str, str, str], list[int]] = {}
    read = [RunResult.from_dict(run) for run in runs]
    for i, run in enumerate(read):
        hashes = {d.name: d.sha256 for d in run.data}
        for variant in run.variants:
            for task in _tasks(run, variant):
                for metric in task["scores"]:
                    at = keys.setdefault((task["dataset"], hashes.get(task["dataset"], ""), task["task"], metric), [])
                    if i not in at:
                        at.append(i)
    out = []
    for (name, sha, task_name, metric), at in keys.items():
        variants = ordered({v for i in at for v in read[i].variants})
        values: dict[str, list[float | None]] = {}
        per_query: dict[str, list[dict[str, float]]] = {}
        for variant in variants:
            found = [next((t for t in _tasks(read[i], variant) if t["dataset"] == name and t["task"] == task_name),
                          None) for i in at]
            values[variant] = [t["scores"].get(metric) if t else None for t in found]
            per_query[variant] = [(t.get("per_query") or {}).get(metric, {}) if t else {} for t in found]
        marks = {}
        for variant, runs_values in per_query.items():
            for pos in range(1, len(at)):
                before, now = runs_values[pos - 1], runs_values[pos]
                qids = sorted(set(before) & set(now))
                if len(qids) < 2:
                    continue
                decision = evaluate(name, task_name, metric, [before[q] for q in qids], [now[q] for q in qids], limit,
                                    Sequence(len(qids), len(qids), 1 - confidence), 0, min_queries)
                if decision.decision == "fail":
                    marks[(variant, pos)] = decision
        out.append(Series(name, sha, task_name, metric, at, values, marks))
    return out


def run_label(i: int, run: dict[str, Any]) -> str:
    read = RunResult.from_dict(run)
    return (f"#{i + 1} {(read.written_at or '?')[:16]} candidate {read.candidate.get('sha256', '?')[:12]} "
            f"({read.candidate.get('source', '?')})")


def quality_table(runs: list[dict[str, Any]], all_series: list[Series], last: int) -> str:
    """Per data set and metric: a row per variant, a column per run (the last `last`), a MARK on a decided
    regression; then throughput per variant over the same runs, from the same verdicts."""
    lines = ["runs (kept verdicts, oldest first):", *(f"  {run_label(i, r)}" for i, r in enumerate(runs))]
    for s in all_series:
        cols = list(range(len(s.runs)))[-last:]
        lines += ["", f"{s.dataset} {s.task} {s.metric} (data sha256 {s.sha256[:12]})",
                  _row("variant", [f"#{s.runs[c] + 1}" for c in cols])]
        for variant, values in s.values.items():
            lines.append(_row(variant, ["–" if values[c] is None else f"{values[c]:.4f}" for c in cols],
                              [(variant, c) in s.marks for c in cols]))
    shown = list(range(len(runs)))[-last:]
    speeds = [throughput(runs[i]) for i in shown]
    lines += ["", "throughput, items/s (speed gate, largest batch) per run:",
              _row("variant", [f"#{i + 1}" for i in shown])]
    for variant in ordered({v for s in speeds for v in s}):
        lines.append(_row(variant, [f"{s[variant]:.1f}" if variant in s else "–" for s in speeds]))
    marked = [(s, variant, pos, d) for s in all_series for (variant, pos), d in s.marks.items()]
    lines += ["", f"{MARK} decided regressions against the previous run of the same data: {len(marked)}"]
    for s, variant, pos, d in marked:
        lines.append(f"  {variant} {s.dataset} {s.task} {s.metric}, run #{s.runs[pos] + 1} vs #{s.runs[pos - 1] + 1}: "
                     f"loss {d.loss:+.2%}, lower bound {d.low:+.2%} > limit {d.limit:.2%} ({d.queries} queries)")
    return "\n".join(lines)


def _row(first: str, cells: list[str], marked: list[bool] | None = None) -> str:
    marks = marked or [False] * len(cells)
    return f"{first:<28}" + "".join(f"{cell:>10}{' ' + MARK if m else '  '}" for cell, m in zip(cells, marks))


def throughput(run: dict[str, Any]) -> dict[str, float]:
    """variant -> items/s at the largest batch its speed gate timed in this run."""
    out = {}
    for variant, result in RunResult.from_dict(run).variants.items():
        timed = {b: s for b, s in result.speeds.items() if "items_per_s" in s}
        if timed:
            out[variant] = timed[max(timed)]["items_per_s"]
    return out
