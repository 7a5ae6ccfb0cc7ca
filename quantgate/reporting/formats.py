"""summary.md's stored-format section and its plot (loss against bytes per vector)."""

from __future__ import annotations

from pathlib import Path

from quantgate.core.results import RunResult
from quantgate.decisions.formats import smallest_passed
from quantgate.reporting.figures import STYLE, save_figure
from quantgate.reporting.sections import DECISION_MARK, _fmt
from quantgate.variants.registry import ordered


def _bounds(d: dict) -> str:
    return f"{d['loss']:+.2%} [{d['low']:+.2%}, {d['high']:+.2%}] ≤ {d['limit']:.2%}"


def _records(verdict: dict) -> list[tuple[str, str, dict, dict]]:
    """(variant, format, the format's record, its data set's record) in the variants' order."""
    variants = RunResult.from_dict(verdict).variants
    return [(v, f, payload, record) for v in ordered(variants) for f, payload in variants[v].formats.items()
            for record in payload.get("datasets", [])]


def format_lines(verdict: dict) -> list[str]:
    rows = _records(verdict)
    if not rows:
        return []
    out = ["", "## Stored formats", "",
           "What an index keeps of each variant's vectors (faiss; no inference: the scoring pass's float "
           "embeddings). Loss = NDCG@10 relative loss against the same variant's float32 vectors, and against the "
           "reference's (the limit there is the format's plus the variant's quality limit); a failed format is not "
           "published, the variant's own decision stands.", "",
           "| vectors | data | bytes/vector | index MB | search ms p50 / p99 | queries/s | NDCG@10 | loss vs float32 "
           "[bounds] ≤ limit | loss vs reference [bounds] ≤ limit | decision |",
           "|---|---|---:|---:|---:|---:|---:|---|---|---|"]
    for variant, fmt, _, r in rows:
        own = r["decisions"][0]
        combined = _bounds(r["decisions"][1]) if len(r["decisions"]) > 1 else "–"
        out.append(f"| `{variant}@{fmt}` | {r['dataset']} | {r['bytes_per_vector']:g} | "
                   f"{r['index_bytes'] / 1e6:.2f} | {_fmt(r.get('search_ms_p50'), '.3f')} / "
                   f"{_fmt(r.get('search_ms_p99'), '.3f')} | {_fmt(r.get('queries_per_s'), ',.0f')} | "
                   f"{r['ndcg_at_10']:.4f} | {_bounds(own)} | {combined} | "
                   f"{DECISION_MARK.get(r['decision'], r['decision'])} |")
    out.append("")
    variants = RunResult.from_dict(verdict).variants
    for variant in ordered(variants):
        if formats := variants[variant].formats:
            best = smallest_passed(formats)
            out.append(f"- `{variant}`: " + (f"the smallest stored format that passed is **{best}** "
                                              f"({formats[best]['datasets'][0]['bytes_per_vector']:g} bytes per vector)"
                                              if best else "no stored format passed"))
    notes = {r["calibration"]["ranges_from"] for *_, r in rows if r.get("calibration")}
    out += [f"- int8/uint8 ranges from {n}." for n in sorted(notes)]
    declared = {r["matryoshka_declared"] for *_, r in rows if r.get("matryoshka_declared") is not None}
    if declared:
        out.append("- Truncated dimensions: the model " + (
            "declares Matryoshka training." if True in declared else
            "does not declare Matryoshka training (its card names no MatryoshkaLoss): truncation was gated all the "
            "same."))
    return out


def format_plot(verdict: dict, path: Path) -> Path | None:
    """Each VARIANT@FORMAT's NDCG@10 loss against its float32 vectors (bounds as error bars) by bytes per vector."""
    rows = _records(verdict)
    if not rows:
        return None
    import matplotlib  # noqa: PLC0415 -- only when there is something to draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415


    fig, ax = plt.subplots(figsize=(9, 6))
    for variant, fmt, _, r in rows:
        d = r["decisions"][0]
        loss, low, high = (v * 100 for v in (d["loss"], d["low"], d["high"]))
        color, marker = STYLE.get(r["decision"], ("grey", "o"))
        ax.errorbar(r["bytes_per_vector"], loss, yerr=[[max(loss - max(low, loss - 50), 0)],
                                                       [max(min(high, loss + 50) - loss, 0)]],
                    fmt=marker, color=color, ms=6, capsize=3, lw=1)
        ax.annotate(f"{variant}@{fmt}" if variant != rows[0][0] else fmt, (r["bytes_per_vector"], loss),
                    xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set_xscale("log", base=2)
    ax.axhline(0, color="grey", lw=0.8)
    handles = [plt.Line2D([], [], color=c, marker=m, ls="", label=k) for k, (c, m) in STYLE.items()]
    ax.legend(handles=handles, title="decision", fontsize=8, loc="upper right")
    ax.set(xlabel="bytes per stored vector (log scale)", ylabel="NDCG@10 loss vs the same variant's float32, %",
           title="Stored formats: point = observed loss, bar = one-sided bounds")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
