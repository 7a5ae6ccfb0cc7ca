"""Two verdicts, decisions and numbers compared, timings aside: does a change of the code leave the packaged gates'
answers as they were?

    python scripts/compare_verdicts.py BEFORE/verdict.json AFTER/verdict.json [--rel 1e-9] [--only-before]

Every leaf of each variant's entry is compared (decision, failures, agreement, quality losses and bounds, batch
invariance, ...) except what measures time or memory on this machine (the speed gates, memory, build and
wall seconds, timestamps, paths) and what a newer version adds (--only-before: keys the older verdict lacks are
listed, not counted). Exit 0 when nothing else differs."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# leaf or branch names that are time, memory, place or run bookkeeping, not the gate's answer
TIMING = {"memory", "wall_seconds", "build_seconds", "cached", "seconds", "scoring_seconds", "written_at",
          "peak_rss_mb", "rss_mb", "path", "resume_key", "runtime", "artifact", "finished", "resumed", "log",
          "time",  # the time guard's estimate and the actual wall time
          "queries_per_s", "search_ms_p50", "search_ms_p99", "search_seconds",  # a stored format's search speed
          "ranges_file"}  # under the report folder
TIMED_GATES = ("speed-", "regression-speed-")


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TIMING or (len(path) == 2 and path[1] == "gates" and str(key).startswith(TIMED_GATES)):
                continue
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


def _same(a, b, rel: float) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or (math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=rel, abs_tol=rel))
    return a == b


def compare(before: dict, after: dict, rel: float = 1e-9) -> tuple[list[str], list[str]]:
    """(differences, keys only the newer verdict has)."""
    old = dict(_leaves(before.get("variants", {})))
    new = dict(_leaves(after.get("variants", {})))
    differences, added = [], []
    for path in sorted(set(old) | set(new), key=lambda p: tuple(map(str, p))):
        where = "/".join(map(str, path))
        if path not in new:
            differences.append(f"{where}: {old[path]!r} -> (absent)")
        elif path not in old:
            added.append(f"{where}: {new[path]!r}")
        elif not _same(old[path], new[path], rel):
            differences.append(f"{where}: {old[path]!r} -> {new[path]!r}")
    return differences, added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rel", type=float, default=1e-9, help="relative tolerance for numbers (default 1e-9)")
    parser.add_argument("--only-before", action="store_true", help="keys the newer verdict adds are not differences")
    args = parser.parse_args()
    before, after = (json.loads(p.read_text()) for p in (args.before, args.after))
    differences, added = compare(before, after, args.rel)
    if not args.only_before:
        differences += [f"(new) {a}" for a in added]
    decisions = {v: (before["variants"].get(v, {}).get("decision"), e.get("decision"))
                 for v, e in after.get("variants", {}).items()}
    print("decisions:", ", ".join(f"{v} {a}" + (f" (was {b})" if b != a else "") for v, (b, a) in decisions.items()))
    if args.only_before and added:
        print(f"{len(added)} key(s) only in {args.after} (not compared): " + "; ".join(added[:10]))
    for line in differences:
        print(line)
    print(f"{len(differences)} difference(s) in decisions and numbers, timings aside")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
