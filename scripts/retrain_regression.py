"""Retrains gone wrong by known amounts, gated against the production model: the regression gate's decisions.

Each noise level makes a copy of --model with Gaussian noise on every Linear weight (std = level x the
weight's std; quantgate.backends.mutant.add_noise), gates it with `--gate-baseline MODEL` on --data (torch-fp32
only, no speed) and prints the regression gate's decision per metric: loss, one-sided bounds, queries used.
The baseline's scores are cached after the first level, so the later levels score only their candidate.

    python scripts/retrain_regression.py --model ../shared/models/minilm-l6-scifact-reranker \\
        --data ../shared/data/scifact --levels 0,0.03,0.06,0.1 --out /tmp/retrain
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from sentence_transformers import CrossEncoder, SentenceTransformer

from quantgate.backends.mutant import add_noise
from quantgate.core.candidate import detect_kind

ROOT = Path(__file__).resolve().parents[1]


def noisy(model: str, level: float, out: Path) -> Path:
    kind, _ = detect_kind(Path(model))
    loaded = (CrossEncoder if kind == "reranker" else SentenceTransformer)(model, device="cpu")
    add_noise(loaded, level, seed=0)
    loaded.save(str(out))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the production model (the baseline)")
    parser.add_argument("--data", required=True, help="BEIR folder with candidates.jsonl")
    parser.add_argument("--levels", default="0,0.03,0.06,0.1")
    parser.add_argument("--out", required=True)
    parser.add_argument("--gate-args", default="", help="more gate options, e.g. '--gate-max-queries 100'")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for level in (float(x) for x in args.levels.split(",")):
        candidate = args.model if level == 0 else noisy(args.model, level, out / f"noise-{level}")
        report = out / f"report-{level}"
        cmd = [sys.executable, "-m", "pytest", "gates/", "-q", "-p", "no:cacheprovider", "-k", "not speed",
               "--variants", "torch-fp32", "--candidate", str(candidate), "--gate-baseline", args.model,
               "--gate-data", args.data, "--gate-cache", str(out / "cache"), "--gate-report", str(report),
               "--gate-history", str(out / "history"), *args.gate_args.split()]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        verdict = json.loads((report / "verdict.json").read_text())
        for d in verdict.get("regression", {}).get("decisions", []):
            rows.append((level, d))
        print(f"noise {level}: exit {done.returncode}, regression {verdict.get('regression', {}).get('decision')}",
              flush=True)
    print("\n| noise | data set | metric | baseline | candidate | loss [one-sided bounds] | decision | queries |")
    print("|---:|---|---|---:|---:|---|---|---:|")
    for level, d in rows:
        print(f"| {level} | {d['dataset']} | {d['task']} {d['metric']} | {d['reference']:.4f} | {d['variant']:.4f} | "
              f"{d['loss']:+.2%} [{d['low']:+.2%}, {d['high']:+.2%}] | {d['decision']} | {d['queries']} of "
              f"{d['available']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
