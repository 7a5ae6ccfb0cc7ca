"""The GPU table of a gate run: per variant and batch, end-to-end and model-only items/s, where the time goes,
peak GPU memory, speedup vs fp32 both ways, and the raw transformers forward the gate is compared with (G-P3:
the gate's model-only within 10% of it). Reads the verdict of a run with --gate-device cuda
(scripts/gpu_run.sh), prints markdown.

    python scripts/gpu_table.py gate-report/verdict.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PHASES = ("call", "tokenize", "transfer", "forward", "post")  # quantgate.speed.phases.PHASES, without importing torch


def _label(key: str, speed: dict) -> str:
    return f"{speed['batch_size']} (auto)" if key == "speed-bauto" else str(speed["batch_size"])


def _ratio(value, base) -> str:
    return f"{value / base:.2f}" if value and base else "–"


def table(verdict: dict) -> str:
    variants = verdict["variants"]
    timed = {vid: sorted(((k, g) for k, g in entry["gates"].items() if k.startswith("speed-")),
                         key=lambda kv: (kv[1]["batch_size"], kv[0])) for vid, entry in variants.items()}
    fp32 = dict(timed.get("torch-fp32", []))
    rows = ["| variant | dtype | agreement (max abs Δ) | batch | end-to-end items/s | model-only items/s | "
            "call / tokenize / transfer / forward / post | phases / e2e | peak GPU MB | speedup vs fp32 (e2e, "
            "model-only) | raw transformers items/s (gate / raw) |",
            "|---|---|---|---:|---:|---:|---|---:|---:|---|---|"]
    for vid, speeds in timed.items():
        agreement = variants[vid]["gates"].get("agreement", {})
        metrics = (agreement.get("results") or [{}])[0].get("metrics", {})
        agreed = (("✅" if agreement.get("passed") else "❌") + f" {metrics.get('max_abs_error', float('nan')):.4f}"
                  if agreement else "–")
        for key, speed in speeds:
            base = fp32.get(key, {})
            shares = " / ".join(f"{speed['phase_shares'][p]:.0%}" for p in PHASES) if "phase_shares" in speed else "–"
            raw = speed.get("raw_forward")
            peak = f"{speed['gpu_peak_mb']:.0f}" if speed.get("gpu_peak_mb") is not None else "–"
            rows.append(
                f"| `{vid}` | {speed.get('dtype') or '–'} | {agreed} | {_label(key, speed)} | "
                f"{speed['items_per_s']:.1f} | {speed.get('model_only_items_per_s', float('nan')):.1f} | {shares} | "
                f"{speed.get('phase_sum_vs_e2e', float('nan')):.2f} | {peak} | "
                f"{_ratio(speed['items_per_s'], base.get('items_per_s'))}, "
                f"{_ratio(speed.get('model_only_items_per_s'), base.get('model_only_items_per_s'))} | "
                + (f"{raw['dtype']} {raw['items_per_s']:.1f} ({raw['gate_model_only_vs_raw']:.2f})" if raw else "–")
                + " |")
    skipped = [f"- `{vid}`: {f}" for vid, entry in variants.items() for f in entry.get("failures", [])]
    skipped += [f"- `{vid}`: {why}" for vid, why in verdict.get("skipped", {}).items()]
    return "\n".join(rows + ([""] + skipped if skipped else [])) + "\n"


def g_p3(verdict: dict) -> str:
    """The gate's model-only fp16 over the raw transformers fp16 forward, per batch (G-P3: at least 0.90)."""
    gates = verdict["variants"].get("torch-fp16", {}).get("gates", {})
    ratios = sorted((g["batch_size"], _label(k, g), g["raw_forward"]["gate_model_only_vs_raw"])
                    for k, g in gates.items() if k.startswith("speed-") and g.get("raw_forward"))
    if not ratios:
        return "G-P3: no raw forward recorded for torch-fp16 (not a CUDA run?)"
    worst = min(r for _, _, r in ratios)
    return (f"G-P3 (torch-fp16 model-only / raw transformers fp16, per batch): "
            f"{', '.join(f'b{label} {r:.2f}' for _, label, r in ratios)}; worst {worst:.2f} "
            f"({'within' if worst >= 0.9 else 'NOT within'} 10%)")


if __name__ == "__main__":
    verdict = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "gate-report/verdict.json").read_text())
    print(table(verdict))
    print(g_p3(verdict))
