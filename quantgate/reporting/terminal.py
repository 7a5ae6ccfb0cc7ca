"""The verdict at the end of `pytest gates/`, in pytest's terminal summary: one line per variant (decision, the figure
that decided it against its limit, speed against the reference, size), then the recommendation and the report."""

from __future__ import annotations

import re

from quantgate.core.results import RunResult, VariantResult
from quantgate.reporting.sections import _bound
from quantgate.reporting.summary import _rows, fastest
from quantgate.variants.registry import REFERENCE_ID

METRIC = {"map": "MAP", "ndcg_at_10": "NDCG@10"}
WIDTH = 64  # the deciding-figure column; a longer reason is cut (the whole line is in summary.md)


def _loss(l: dict, datasets: int) -> str:
    where = [l["dataset"]] if datasets > 1 else []
    return " ".join([*where, l.get("task") or "", METRIC.get(l["metric"], l["metric"]), "loss"]).strip()


def deciding_figure(row: dict) -> str:
    """What decided the row: a failed variant's first failure; an undecided one's loss and how many queries would
    decide it; a passing one's largest upper bound on a loss against its limit."""
    if row["variant"] == REFERENCE_ID:
        return "the reference" + (f" ({row['failures'][0].splitlines()[0]})" if row["failures"] else "")
    if row["decision"] == "skipped":
        return row.get("skip_reason", "")
    if row["failures"]:
        return row["failures"][0].splitlines()[0]
    twin = next((u["scores_of"] for u in row.get("usage", []) if u.get("scores_of")), None)
    if twin is not None:  # byte-identical graphs run the same: say so rather than repeat its figure as news
        return f"the same model as {twin}: {_decided(row)}"
    return _decided(row)


def _decided(row: dict) -> str:
    losses = row["losses"]
    sets = len({l["dataset"] for l in losses})
    undecided = [l for l in losses if l["decision"] == "inconclusive"]
    if undecided:
        l = max(undecided, key=lambda l: l.get("needed") or 1 << 30)
        need = f"needs ~{l['needed']} queries" if l.get("needed") else "on the limit: no query count decides it"
        return (f"{need}: {_loss(l, sets)} {l['loss']:+.1%} [{_bound(l['low'])}, {_bound(l['high'])}] vs "
                f"{l['limit']:.2%}, {l['queries']} queries")
    if not losses:
        return "no quality decision (agreement and speed only)" if row["decision"] == "pass" else ""
    l = max(losses, key=lambda l: l["high"] - l["limit"])
    verb = "<=" if l["decision"] == "pass" else ">=" if l["decision"] == "fail" else "~"
    bound = l["high"] if l["decision"] == "pass" else l["low"] if l["decision"] == "fail" else l["loss"]
    return f"{_loss(l, sets)} {verb} {_bound(bound)} vs limit {l['limit']:.2%}, {l['queries']} queries"


def _formats(result: VariantResult) -> str:
    """'stored formats: 7 of 7 pass' or '6 of 7 pass; int8 inconclusive'."""
    formats = {fid: f.get("decision", "?") for fid, f in result.formats.items()}
    if not formats:
        return ""
    other = [f"{fid} {d}" for fid, d in formats.items() if d != "pass"]
    passed = len(formats) - len(other)
    return f"stored formats: {passed} of {len(formats)} pass" + (f"; {', '.join(other)}" if other else "")


def _cut(text: str, width: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def recommend(rows: list[dict]) -> list[str]:
    """summary.md's recommendation (the same choice: quantgate.reporting.summary.fastest), a line each."""
    passing = [r for r in rows if r["passed"]]
    if not passing:
        return ["recommendation: ship none (no variant was decided pass)"]
    fast, wide, gpu = fastest(rows)
    lines = [f"recommendation, batch 1: {fast['variant']} ({fast['latency_ms']:.1f} ms per item)"] if fast else []
    if wide is not None:
        rate = f"{wide['model_only']:.0f} items/s model-only" if gpu else f"{wide['items_per_s']:.0f} items/s"
        lines += [f"recommendation, batch {wide['batch']}: {wide['variant']} ({rate}, "
                  f"{wide['speedup'] or 1:.2f}x the reference)",
                  f"speed = items/s at batch {wide['batch']} against torch-fp32, end to end, on this machine"]
    return lines or ["passed: " + ", ".join(r["variant"] for r in passing) + " (the speed gate did not run)"]


def terminal_lines(verdict: dict, report_dir: str) -> list[str]:
    rows = _rows(verdict)
    read = RunResult.from_dict(verdict)
    name = max((len(r["variant"]) for r in rows), default=7)
    lines = [f"{'variant':<{name}}  {'decision':<12}  {'deciding figure':<{WIDTH}}  {'speed':>6}  {'MB':>6}"]
    for r in rows:
        speed = f"{r['speedup']:.2f}x" if r.get("speedup") else "–"
        size = f"{r['size_mb']:.0f}" if r.get("size_mb") else "–"
        lines.append(f"{r['variant']:<{name}}  {r['decision']:<12}  {_cut(deciding_figure(r), WIDTH):<{WIDTH}}  "
                     f"{speed:>6}  {size:>6}")
        if formats := _formats(read.variant(r["variant"])):
            lines.append(f"{'':<{name}}  {'':<12}  {_cut(formats, WIDTH + 16)}")
    if not read.complete:
        lines.append("This run did not finish: no variant of it passes (a rerun resumes it).")
    lines += ["", *recommend(rows)]
    lines.append(f"report: {report_dir}/summary.md (verdict.json beside it)")
    return lines
