"""The GPU table of a gate run: items/s per variant and batch, speedup vs fp32, peak GPU memory,
agreement. Reads the verdict of a run with --gate-device cuda (see docs/measurements.md for the
command the device ran), prints markdown.

    python scripts/gpu_table.py gate-report/verdict.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(verdict: dict) -> str:
    variants = verdict["variants"]
    rows = ["| variant | dtype | agreement | max abs Δ | Kendall τ | batch | items/s | speedup vs fp32 | peak GPU MB |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for vid, entry in variants.items():
        gates = entry["gates"]
        agreement = gates.get("agreement", {})
        metrics = (agreement.get("results") or [{}])[0].get("metrics", {})
        passed = "✅" if agreement.get("passed") else ("❌" if agreement else "–")
        for key, speed in sorted(((k, g) for k, g in gates.items() if k.startswith("speed-")),
                                 key=lambda kv: (kv[1]["batch_size"], kv[0])):
            batch = speed["batch_size"]
            label = f"{batch} (auto)" if key == "speed-bauto" else str(batch)
            ratio = speed.get("speedup_vs_reference")  # measured against torch-fp32 in the same run and batch label
            speedup = f"{ratio:.2f}" if ratio else "–"
            peak = f"{speed['gpu_peak_mb']:.0f}" if speed.get("gpu_peak_mb") is not None else "–"
            max_abs = metrics.get("max_abs_error", float("nan"))
            rows.append(f"| `{vid}` | {speed.get('dtype') or '–'} | {passed} | {max_abs:.4f} | "
                        f"{metrics.get('kendall_tau_mean', float('nan')):.3f} | {label} | {speed['items_per_s']:.1f} | "
                        f"{speedup} | {peak} |")
    skipped = [f"- `{vid}`: {f}" for vid, entry in variants.items() for f in entry.get("failures", [])]
    return "\n".join(rows + ([""] + skipped if skipped else [])) + "\n"


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "gate-report/verdict.json").read_text())))
