"""summary.md: the run's verdict as one table a person reads at a glance, with what decided it."""

from __future__ import annotations

from quantgate.backends import ran_with
from quantgate.core.gates import Gate
from quantgate.core.results import RunResult, VariantResult
from quantgate.reporting.formats import format_lines
from quantgate.reporting.sections import (
    DECISION_MARK,
    _bound,
    _fmt,
    batch_lines,
    check_lines,
    memory_lines,
    precision_table,
    regression_lines,
    time_lines,
)
from quantgate.speed.phases import phase_lines
from quantgate.variants.registry import ordered


def _row(vid: str, result: VariantResult) -> dict:
    metrics = result.agreement_metrics
    quality = result.numbers(Gate.QUALITY)
    losses = quality.get("decisions", [])
    usage = quality.get("usage", [])
    speed, throughput_batch = result.speeds, result.throughput_batch
    throughput = speed.get(throughput_batch, {}) if throughput_batch else {}
    return {
        "variant": vid,
        "passed": result.passed,
        "decision": result.decision,
        "queries": ", ".join(f"{u['queries']}/{u['available']}"
                             + (f" (scores of {u['scores_of']}: the same model)" if u.get("scores_of") else "")
                             for u in usage) or "–",
        "tasks": quality.get("tasks", []),
        "usage": usage,
        "failures": list(result.failures),
        "max_abs": metrics.get("max_abs_error"),
        "tau": metrics.get("kendall_tau_mean"),
        "ties": {k: metrics[k] for k in ("tied_pairs", "tied_pairs_reference", "saturated_pairs",
                                         "saturated_pairs_reference") if k in metrics},
        "losses": losses,
        "worst": max(losses, key=lambda l: (l["loss"] - l["limit"], l["loss"]), default=None),
        "latency_ms": speed.get(1, {}).get("latency_ms_p50", speed.get(1, {}).get("latency_ms_median")),
        "latency_p99": speed.get(1, {}).get("latency_ms_p99"),
        "memory": result.memory,
        "wall_s": result.wall_seconds,
        "items_per_s": throughput.get("items_per_s"),
        "speedup": throughput.get("speedup_vs_reference"),
        "batch": throughput_batch,
        "model_only": throughput.get("model_only_items_per_s"),
        "device": next((s.get("device") for s in speed.values() if s.get("device")), None),
        "size_mb": next((s.get("artifact_mb") for s in speed.values() if s.get("artifact_mb")), None),
        "load": result.artifact.get("load", {}),
        "runtime": result.runtime,
        "batch_invariance": result.numbers(Gate.BATCH),
    }


def runtime_lines(rows: list[dict]) -> list[str]:
    """What each variant ran with, read back after loading (not the options asked for)."""
    ran = [f"`{r['variant']}` {ran_with(r['runtime'])}"
           + (f" (the files of `{r['runtime']['artifact_of']}`)" if r["runtime"].get("artifact_of") else "")
           for r in rows if ran_with(r["runtime"])]
    return [f"Ran with (read back from each loaded model): {' · '.join(ran)}.", ""] if ran else []


def _precision_note(row: dict) -> str:
    """'accuracy-controlled: 34 of 38 MatMul in int8, validation MAP loss 0.4% <= 1.0%' for tuned variants;
    ' (OpenVINO bf16)' for an OpenVINO variant, whose precision a plain load would not make obvious; ' (weights int4,
    activations f32)' where the artifact was read back."""
    load = row.get("load") or {}
    control = load.get("accuracy_control")
    if not control:  # and the weights' precision where the build read it back from the artifact (weight-only, f32)
        runtime = row.get("runtime") or {}
        parts = [ran_with(runtime)] if runtime.get("runtime") == "openvino" else []
        if "weights" in load:
            parts.append(f"weights {load['weights']}" + (f", activations {load['activations']}"
                                                         if "activations" in load else ""))
        return f" ({'; '.join(parts)})" if parts else ""
    ops = f"{load['ops_int8']} of {load['ops']} {load['op_type']} in int8, " if "ops" in load else ""
    return (f" (accuracy-controlled: {ops}tuning's validation MAP loss {control['loss']:+.2%} "
            f"{'<=' if control['met'] else '>'} {control['max_loss']:.2%}, {'met' if control['met'] else 'not met'})")


def _loss_cell(losses: list[dict], metric: str) -> str:
    """One line per task: 'scifact reranking: +0.54% [-0.8%, +2.0%] inconclusive' (an embedder has two per set)."""
    cells = []
    for l in (l for l in losses if l["metric"] == metric):
        label = " ".join(filter(None, (l["dataset"], l.get("task"))))
        cells.append(f"{label}: {l['loss']:+.2%} [{_bound(l['low'])}, {_bound(l['high'])}] {l['decision']}")
    return "<br>".join(cells) or "–"




def first_stage_lines(verdict: dict, rows: list[dict]) -> list[str]:
    """The candidate lists' own order beside the reference: a reranker that does not beat it shows."""
    stages = RunResult.from_dict(verdict).first_stage
    reference = next((r for r in rows if r["variant"] == "torch-fp32"), None)
    lines = []
    for name, scores in stages.items():
        ref = next((t["scores"] for t in (reference or {}).get("tasks", [])
                    if t["dataset"] == name and t["task"] == "reranking"), {})
        cells = [f"{m} {v:.4f} (reference {ref[m]:.4f}{'' if ref[m] > v else ', NOT better'})" if m in ref
                 else f"{m} {v:.4f}" for m, v in scores.items()]
        lines.append(f"- {name} first stage (candidate order): " + ", ".join(cells))
    return ["", "## First stage", "", *lines] if lines else []


def ties_lines(rows: list[dict]) -> list[str]:
    """Variants whose scores tie or saturate more often than the reference's (low-precision activations do)."""
    lines = []
    for r in rows:
        t = r.get("ties") or {}
        more = [f"{t[k]:.0f} {k.removesuffix('_pairs')} pairs (reference {t.get(k + '_reference', 0):.0f})"
                for k in ("tied_pairs", "saturated_pairs") if t.get(k, 0) > t.get(k + "_reference", 0)]
        if more:
            lines.append(f"- `{r['variant']}`: " + ", ".join(more))
    return (["", "## Score ties", "", "Equal scores among a query's candidates are ordered by document id for every "
             "variant (pytrec_eval, as trec_eval).", "", *lines] if lines else [])


def undecided_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        for l in r["losses"]:
            if l["decision"] == "inconclusive":
                need = (f"needs about {l['needed']} queries at this spread (used {l['queries']})" if l.get("needed")
                        else "the loss sits on the limit: no number of queries would decide it")
                lines.append(f"- `{r['variant']}` {l['dataset']} {l['task']} {l['metric']}: loss {l['loss']:+.2%}, "
                             f"bounds [{_bound(l['low'])}, {_bound(l['high'])}] around the limit "
                             f"{l['limit']:.2%}: {need}")
    return ["", "## Inconclusive: what would decide them", "", *lines] if lines else []


def fastest(rows: list[dict]) -> tuple[dict | None, dict | None, bool]:
    """The passing variants to recommend: (lowest batch-1 latency, highest large-batch throughput, whether that
    throughput was ranked model-only). On a GPU the model-only figure ranks: tokenization there is the host's."""
    passing = [r for r in rows if r["passed"]]
    fast = [r for r in passing if r["latency_ms"] is not None]
    wide = [r for r in passing if r["items_per_s"] is not None]
    gpu = bool(wide) and all(r["device"] == "cuda" and r["model_only"] for r in wide)
    return (min(fast, key=lambda r: r["latency_ms"]) if fast else None,
            max(wide, key=lambda r: r["model_only"] if gpu else r["items_per_s"]) if wide else None, gpu)


def recommendation(rows: list[dict]) -> list[str]:
    passing = [r for r in rows if r["passed"]]
    if not passing:
        return ["No variant was decided pass: ship none of them (see the failures and the undecided below)."]
    lines = []
    best, wide, gpu = fastest(rows)
    if best is not None:
        lines.append(f"**Small-batch latency:** `{best['variant']}`{_precision_note(best)} — "
                     f"{best['latency_ms']:.1f} ms "
                     "per item at batch 1, the fastest variant that passed every gate on this machine.")
    if wide is not None:
        best = wide
        e2e, only = f"{best['items_per_s']:.1f} items/s end to end", f"{_fmt(best['model_only'], '.1f')} model-only"
        lines.append(f"**Large-batch throughput{' (GPU: ranked model-only)' if gpu else ''}:** `{best['variant']}`"
                     f"{_precision_note(best)} — {f'{only} items/s ({e2e})' if gpu else f'{e2e} ({only})'} at batch "
                     f"{best['batch']} ({_fmt(best['speedup'], '.2f')}× the reference end to end), the fastest that "
                     "passed. Model-only = the forward on pre-tokenized tensors (what a server that tokenizes "
                     "elsewhere gets); see \"Where the time goes\".")
    if not lines:
        lines.append("Passing variants: " + ", ".join(f"`{r['variant']}`" for r in passing) +
                     " (run the speed gate to rank them).")
    return lines


def _rows(verdict: dict) -> list[dict]:
    """One row per variant: the reference first, then the registry's order, then the rest by id."""
    read = RunResult.from_dict(verdict)
    variants = read.variants
    skipped = {vid: why for vid, why in read.skipped.items() if vid not in variants}
    rows = [_row(vid, variants[vid]) if vid in variants else {**_row(vid, VariantResult(vid)), "decision": "skipped",
                                                              "skip_reason": skipped[vid]}
            for vid in ordered([*variants, *skipped])]
    reference = {(b, r["items_per_s"]) for r in rows if r["variant"] == "torch-fp32" for b in [r["batch"]]}
    for r in rows:  # speedup from the verdict when the run did not record it
        if r["speedup"] is None and r["items_per_s"]:
            base = next((v for b, v in reference if b == r["batch"] and v), None)
            r["speedup"] = round(r["items_per_s"] / base, 3) if base else None
    return rows


def encoding_lines(verdict: dict) -> list[str]:
    """Which prompts each role was sent and which similarity ranked: what "as deployed" meant in this run."""
    read = RunResult.from_dict(verdict)
    enc = read.encoding
    if not enc:
        return []
    prompts = {t: p for t, p in enc.get("prompts", {}).items() if any(p.values())}
    said = "; ".join(f"{task}: query {p['query']!r}, document {p['document']!r}" for task, p in prompts.items())
    if enc.get("pair_prompt"):
        said = "; ".join(filter(None, [said, f"pair prompt {enc['pair_prompt']!r}"]))
    line = f"Inputs: {said or 'no prompts'} ({enc.get('source', '?')})"
    if read.candidate.get("kind") == "embedder":
        line += f"; similarity {enc.get('similarity', 'cosine')}"
    unused = enc.get("model_prompts") if not said else None
    return [line + "." + (f" **The model declares prompts ({', '.join(unused)}) that this run did not send.**"
                          if unused else ""), ""]


def summary_markdown(verdict: dict) -> str:
    rows, read = _rows(verdict), RunResult.from_dict(verdict)
    c = read.candidate
    out = [f"# quantgate: {c.get('source', '?')}", "",
           f"{c.get('kind', '?')} ({c.get('kind_reason', '')}); sha256 `{str(c.get('sha256', ''))[:12]}`; "
           f"thresholds sha256 `{str(read.thresholds_sha256 or '')[:12]}`; "
           f"machine {read.cpu or '?'}; threads {read.threads if read.threads is not None else '?'}", "",
           *encoding_lines(verdict)]
    if not read.complete:
        finished = read.finished
        out += [f"**This run has not finished ({len(finished)} variant(s) done so far: "
                f"{', '.join(finished) or 'none'}): no variant of it passes.** A rerun with the same cache and "
                "settings resumes from them.", ""]
    if read.resumed:
        out += [f"Resumed from an earlier incomplete run (same artifact and inputs, not recomputed): "
                f"{', '.join(f'`{v}`' for v in read.resumed)}.", ""]
    out += [f"**Data: {d.note}.**" for d in read.data if d.embedded]
    out += runtime_lines(rows)
    out += regression_lines(verdict)
    out += ["", "## Recommendation", "", *recommendation(rows), "",
            "## Variants", "",
            "| variant | decision | queries used | max abs Δ | Kendall τ | MAP loss [bounds] | NDCG@10 loss [bounds] "
            "| latency ms b1 p50 / p99 | items/s | speedup | size MB |",
            "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| `{r['variant']}` | {DECISION_MARK.get(r['decision'], r['decision'])} | {r['queries']} | "
                   f"{_fmt(r['max_abs'], '.4f')} | "
                   f"{_fmt(r['tau'], '.3f')} | {_loss_cell(r['losses'], 'map')} | "
                   f"{_loss_cell(r['losses'], 'ndcg_at_10')} | "
                   f"{_fmt(r['latency_ms'], '.1f')} / {_fmt(r['latency_p99'], '.1f')} | "
                   f"{_fmt(r['items_per_s'], '.1f')} | {_fmt(r['speedup'], '.2f')} | {_fmt(r['size_mb'], '.1f')} |")
    out += first_stage_lines(verdict, rows)
    out += batch_lines(rows)
    out += check_lines(verdict)
    out += format_lines(verdict)
    out += memory_lines(verdict, rows)
    out += time_lines(verdict)
    out += undecided_lines(rows)
    out += ties_lines(rows)
    out += precision_table(rows)
    out += phase_lines(verdict)
    failing = [r for r in rows if r["failures"]]
    if failing:
        out += ["", "## Why variants failed", ""]
        for r in failing:
            out += [f"- `{r['variant']}`:"] + [f"  - {f.splitlines()[0]}" for f in r["failures"]]
    out += ["", "Loss = (reference − variant) / reference: positive is worse. Bounds: one-sided each way "
                "(paired t on per-query values, Fieller's interval, adjusted for the sequential looks); pass = upper "
                "bound within the limit, fail = lower bound above it, inconclusive = neither. Queries used: of the "
                "evaluation order (a variant stops once every metric is decided)."]
    return "\n".join(out) + "\n"
