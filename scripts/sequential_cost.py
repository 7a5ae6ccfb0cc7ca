"""Inference spent by sequential decisions vs scoring every pair: one gate run (agreement + quality), then
a table of each variant's decision, queries and pairs its decision used, pairs inferred (none for a variant that
took the scores of a variant running the same model), and the scoring seconds.

    python scripts/sequential_cost.py --out /tmp/cost/seq -- \
        --candidate ../shared/models/minilm-l6-scifact-reranker --gate-data ../shared/data/scifact \
        --gate-cache /tmp/pq/cache

`--every-pair` runs the same gate with one look at all queries (thresholds.toml's [decision] first_look
raised above the data set's size): the work of scoring every pair with every variant, for comparison.
Nothing here is a timed assertion; the figures go to docs/measurements.md with this command.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the thresholds copy, the report and the log")
    parser.add_argument("--every-pair", action="store_true", help="one look at all queries (no sequential stop)")
    parser.add_argument("gate_args", nargs=argparse.REMAINDER, help="after --: options for pytest gates/")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    thresholds = (ROOT / "thresholds.toml").read_text()
    if args.every_pair:
        thresholds = re.sub(r"^first_look = \d+", "first_look = 1000000", thresholds, flags=re.MULTILINE)
    (out / "thresholds.toml").write_text(thresholds)
    command = [sys.executable, "-m", "pytest", "gates/test_agreement.py", "gates/test_quality.py", "-q",
               "-p", "no:cacheprovider", "--gate-report", str(out / "report"), "--gate-thresholds",
               str(out / "thresholds.toml"), *[a for a in args.gate_args if a != "--"]]
    started = time.perf_counter()
    with open(out / "log.txt", "w") as log:
        code = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    verdict = json.loads((out / "report" / "verdict.json").read_text())
    rows, used_pairs, scored_pairs, all_pairs = [], 0, 0, 0
    for vid, entry in verdict["variants"].items():
        quality = entry["gates"].get("quality", {})
        for usage in quality.get("usage", []):
            per_query = usage["pairs"] / max(usage["queries"], 1)
            available = round(per_query * usage["available"])
            shared = usage.get("scores_of")  # the same model as a variant scored before: nothing inferred
            if vid != "torch-fp32":
                used_pairs += usage["pairs"]
                scored_pairs += 0 if shared else usage["pairs"]
                all_pairs += available
            seconds = verdict.get("scoring_seconds", {}).get(f"{vid}@{usage['dataset']}")
            rows.append(f"| `{vid}` | {entry['decision']} | {usage['queries']}/{usage['available']} | "
                        f"{usage['pairs']}/{available} | {0 if shared else usage['pairs']} | {seconds} | "
                        f"{usage['stopped']}{f'; scores of {shared}' if shared else ''} |")
    summary = [f"pytest exit {code}; wall {wall:.0f} s; variants other than the reference: decisions on {used_pairs} "
               f"of {all_pairs} pairs ({used_pairs / max(all_pairs, 1):.1%}), {scored_pairs} pairs inferred "
               f"({scored_pairs / max(all_pairs, 1):.1%})",
               "| variant | decision | queries | pairs decided on | pairs inferred | scoring s | stopped |",
               "|---|---|---|---|---|---|---|", *rows]
    (out / "cost.md").write_text("\n".join(summary) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
