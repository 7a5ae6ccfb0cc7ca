"""Weight-only variants on a base-size decoder: a Qwen3-shape embedder (12 layers x 768, random weights, last-token
pooling, the all-MiniLM tokenizer; scripts/tiny_models.py BASE_DECODER) gated with openvino (f32),
openvino-int8-wo, openvino-int4-wo and onnx-int4-wo. Per variant: build time, size on disk, agreement figures and
items/s at batch 8 against openvino f32. Random weights say nothing about quality; build, size and speed scale with
the shape.

    python scripts/weight_only.py --data ../shared/data/scifact --out /tmp/weight-only

Writes OUT/results.json and prints a markdown table (docs/measurements.md keeps it with this command).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from scale import times
from tiny_models import BASE_DECODER, build

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = "torch-fp32,openvino,openvino-int8-wo,openvino-int4-wo,onnx-int4-wo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = build("qwen3-embedder", args.out / "model", shape=BASE_DECODER)
    report = args.out / "report"
    command = [sys.executable, "-m", "pytest", "gates/", "-q", "-p", "no:cacheprovider", "-k", "not batch",
               "--candidate", str(model), "--gate-data", str(args.data), "--gate-max-queries", str(args.queries),
               "--gate-top-k", "5", "--gate-no-retrieval", "--gate-embedding-formats", "none", "--variants", VARIANTS,
               "--gate-speed-batch", "8", "--gate-speed-rounds", "3", "--gate-latency-inputs", "20",
               "--gate-cache", str(args.out / "cache"), "--gate-report", str(report), "--gate-no-resume",
               "--gate-history", str(args.out / "history"), "--benchmark-storage", f"file://{args.out / 'bench'}"]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    (args.out / "log.txt").write_text(proc.stdout + proc.stderr)
    verdict = json.loads((report / "verdict.json").read_text())
    rows = {}
    for vid, entry in verdict["variants"].items():
        gates = entry.get("gates", {})
        metrics = (gates.get("agreement", {}).get("results") or [{}])[0].get("metrics", {})
        speed = gates.get("speed-b8", {})
        files = entry.get("artifact", {}).get("files", {})
        size = sum((Path(entry["artifact"]["path"]) / f).stat().st_size for f in files) if files else None
        rows[vid] = {"decision": entry.get("decision"), "build_s": times(vid, entry, verdict)["build_s"],
                     "size_mb": round(size / 2**20, 1) if size else None,
                     "cosine_min": metrics.get("cosine_min"), "cosine_mean": metrics.get("cosine_mean"),
                     "tau_mean": metrics.get("kendall_tau_mean"), "items_per_s": speed.get("items_per_s"),
                     "weights": entry.get("artifact", {}).get("load", {}).get("weights")}
    base = rows.get("openvino", {}).get("items_per_s")
    result = {"seconds": round(time.perf_counter() - started, 1), "returncode": proc.returncode, "variants": rows}
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    print("| variant | weights | build s | size MB | cosine min / mean | Kendall τ mean | items/s b8 | × openvino |")
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for vid, r in rows.items():
        def f(v, spec):
            return format(v, spec) if isinstance(v, (int, float)) else "–"
        ratio = r["items_per_s"] / base if base and r["items_per_s"] else None
        print(f"| `{vid}` | {r['weights'] or '–'} | {f(r['build_s'], '.1f')} | {f(r['size_mb'], '.1f')} | "
              f"{f(r['cosine_min'], '.4f')} / {f(r['cosine_mean'], '.4f')} | {f(r['tau_mean'], '.3f')} | "
              f"{f(r['items_per_s'], '.1f')} | {f(ratio, '.2f')} |")
    print(f"\n{result['seconds']} s in all, pytest exit {proc.returncode}")


if __name__ == "__main__":
    main()
