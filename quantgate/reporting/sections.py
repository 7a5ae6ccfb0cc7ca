"""summary.md's sections beside the main table: batch and padding, regression, memory and time, int8 precision."""

from __future__ import annotations

from quantgate.core.gates import CHECK_PREFIX
from quantgate.core.results import RunResult
from quantgate.variants.registry import ordered

DECISION_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive", "skipped": "⏭ skipped"}


def _fmt(value, spec: str, missing: str = "–") -> str:
    return missing if value is None else format(value, spec)


def _bound(value: float) -> str:
    return f"{value:+.1%}" if abs(value) != float("inf") else ("−∞" if value < 0 else "+∞")


def batch_lines(rows: list[dict]) -> list[str]:
    """Which variants' scores depend on the batch (gates/test_batch_invariance.py)."""
    measured = [r for r in rows if "max_abs_error" in r["batch_invariance"]]
    if not measured:
        return []
    out = ["", "## Batch and padding", "",
           "Each variant scored the same pairs alone (batch 1), beside the longest pair, in one mixed batch and in "
           "batches of 2: the largest difference from batch 1 (scores after activation; embedders: the pair's cosine).",
           "", "| variant | largest difference | limit | depends on the batch |", "|---|---:|---:|---|"]
    for r in measured:
        b = r["batch_invariance"]
        limit = b.get("limits", {}).get("batch_max_abs_error")
        said = {"none": "no (fp32 noise)", "rounding": "rounding only (reduced precision over other shapes)",
                "batch": "**yes**"}.get(b.get("dependence", ""), "?")
        out.append(f"| `{r['variant']}` | {b['max_abs_error']:.2g} | {_fmt(limit, 'g')} | {said} |")
    dependent = [f"`{r['variant']}`" for r in measured if r["batch_invariance"].get("depends_on_batch")]
    if dependent:
        out += ["", f"Scores that depend on the batch: {', '.join(dependent)}. Their quality was measured at the "
                    "gate's scoring batch (--gate-batch-size); served at another batch, they score differently."]
    return out


def regression_lines(verdict: dict) -> list[str]:
    """The candidate against the model in production (--gate-baseline), when one was named."""
    read = RunResult.from_dict(verdict)
    baseline = read.baseline
    if not baseline:
        return []
    result = read.regression.numbers
    where = f"its verdict `{baseline['verdict']}`" if baseline.get("verdict") else "the model, scored in this run"
    out = ["", "## Regression against the baseline", "",
           f"Baseline `{baseline['source']}` ({where}), sha256 `{baseline['sha256'][:12]}`: "
           f"**{DECISION_MARK.get(result.get('decision'), 'not gated (the regression test did not run)')}**"
           + (f"; limit {result['limit']:+.2%} relative loss, every metric" if "limit" in result else "") + ".", ""]
    if result.get("decisions"):
        out += ["| data set | task | metric | decision | baseline | candidate | loss [bounds] | queries |",
                "|---|---|---|---|---:|---:|---|---:|"]
        out += [f"| {d['dataset']} | {d['task']} | {d['metric']} | {DECISION_MARK[d['decision']]} | "
                f"{d['reference']:.4f} | {d['variant']:.4f} | {d['loss']:+.2%} [{_bound(d['low'])}, "
                f"{_bound(d['high'])}] | {d['queries']} of {d['available']} |" for d in result["decisions"]]
    out += [f"- {f}" for f in read.regression.failures]
    return out


def memory_lines(verdict: dict, rows: list[dict]) -> list[str]:
    """Each variant's peak resident memory and wall time, and what the memory guard skipped."""
    measured = [r for r in rows if r["memory"]]
    read = RunResult.from_dict(verdict)
    skipped = read.skipped
    if not measured and not skipped:
        return []
    out = ["", "## Memory and time", "",
           "| variant | peak RSS MB | after release MB | wall s |", "|---|---:|---:|---:|"]
    for r in measured:
        m = r["memory"]
        out.append(f"| `{r['variant']}` | {_fmt(m.get('peak_rss_mb'), '.0f')} | "
                   f"{_fmt(m.get('rss_after_release_mb'), '.0f')} | {_fmt(r['wall_s'], '.1f')} |")
    out += [f"- skipped: {why}" for why in skipped.values()]
    if read.peak_rss_mb:
        out.append(f"- the run's peak: {read.peak_rss_mb:.0f} MB (per variant: sampled every "
                   f"{measured[0]['memory'].get('sampled_every_s', 0.05) if measured else 0.05} s)")
    return out


def precision_table(rows: list[dict]) -> list[str]:
    """What stayed in floating point in each int8 variant, and what accuracy control bought."""
    quantized = [r for r in rows if "ops" in (r.get("load") or {})]
    if not quantized:
        return []
    out = ["", "## Int8: what stayed in floating point", "",
           "| variant | int8 ops | float ops | validation MAP (reference → variant) | validation loss / limit "
           "(evidence from tuning) | items/s | speedup | gate decision |",
           "|---|---:|---:|---|---|---:|---:|---|"]
    for r in quantized:
        load, control = r["load"], r["load"].get("accuracy_control")
        validation = (f"{control['reference']:.4f} → {control['quantized']:.4f} "
                      f"({control['validation_queries']} queries)"
                      if control else "– (not tuned)")
        limit = (f"{control['loss']:+.2%} / {control['max_loss']:.2%}{'' if control['met'] else ' (not met)'}"
                 if control else "–")
        weights = load.get("ops_float_int8_weights")
        floats = f"{load['ops_float']}" + (f" ({weights} with int8 weights)" if weights else "")
        out.append(f"| `{r['variant']}` | {load['ops_int8']} of {load['ops']} {load['op_type']} | {floats} | "
                   f"{validation} | {limit} | {_fmt(r['items_per_s'], '.1f')} | {_fmt(r['speedup'], '.2f')} | "
                   f"{DECISION_MARK.get(r['decision'], r['decision'])} |")
    return out


def check_lines(verdict: dict) -> list[str]:
    """A team's own checks (gate_record): one row per check, one column per variant that ran it."""
    variants = RunResult.from_dict(verdict).variants
    names = list(dict.fromkeys(g.removeprefix(CHECK_PREFIX) for result in variants.values()
                               for g in result.gates if g.startswith(CHECK_PREFIX)))
    if not names:
        return []
    ran = [v for v in ordered(variants) if any(CHECK_PREFIX + n in variants[v].gates for n in names)]
    out = ["", "## Your checks", "",
           "Recorded by the team's own tests with `gate_record`; a failed check fails the variant.", "",
           "| check | limit | " + " | ".join(f"`{v}`" for v in ran) + " |", "|---|---:|" + "---:|" * len(ran)]
    for name in names:
        cells, limit = [], "–"
        for v in ran:
            check = variants[v].gates.get(CHECK_PREFIX + name)
            if check is None:
                cells.append("–")
                continue
            g = check.numbers
            if g.get("limit") is not None:
                limit = f"{'≥' if g.get('higher_is_better') else '≤'} {g['limit']:.4g}"
            mark = "✅" if check.recorded_pass else "❌"
            cells.append(mark if g.get("value") is None else f"{_fmt(g['value'], '.4g')} {mark}")
        out.append(f"| {name} | {limit} | " + " | ".join(cells) + " |")
    return out


def time_lines(verdict: dict) -> list[str]:
    """The time guard's estimates beside what each variant took (quantgate.variants.timeguard)."""
    read = RunResult.from_dict(verdict)
    variants = read.variants
    timed = [v for v in ordered(variants) if "estimated_s" in variants[v].time]
    if not timed:
        return []
    budget = read.budget_s
    guarded = [v for v, why in read.skipped.items() if why.startswith("time guard")]
    out = ["", "## Time", "",
           f"Estimated before each variant from measured rates (the reference's scoring time here × the variant's "
           f"measured multiple){f'; budget {budget / 60:.1f} min' if budget else ''}. Skipped by the time guard: "
           f"{', '.join(guarded) or 'none'}.",
           "", "| variant | estimated s | actual s | actual / estimated | estimated from |", "|---|---:|---:|---:|---|"]
    for v in timed:
        t = variants[v].time
        ratio = t["actual_s"] / t["estimated_s"] if t.get("actual_s") and t["estimated_s"] else None
        out.append(f"| `{v}` | {t['estimated_s']:.1f} | {_fmt(t.get('actual_s'), '.1f')} | {_fmt(ratio, '.2f')} | "
                   f"{t.get('from', '')} |")
    return out
