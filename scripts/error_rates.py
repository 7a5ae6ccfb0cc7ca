"""Error rates of the gate's decisions, by simulation on the per-query values of real variants.

    python scripts/error_rates.py --data ../shared/data/scifact --scores /tmp/pq/reranker-scifact \
        --runs 1000 --seed 0 --out /tmp/pq/rates-reranker-scifact.json

Scores come from scripts/per_query_scores.py (every query of the set scored by each variant); mteb turns
them into per-query MAP / NDCG@10 (the values the gate decides on). Each simulated run draws the data set's
number of queries with replacement from those per-query pairs (the queries are the population), in a
random order, and applies the gate's procedure: looks at quantgate.decisions.decision.schedule, the look's critical
value, stop when decided. Populations:

- **as measured**: the variant's own per-query values (its true loss is its loss on the whole set);
- **shifted to k x the limit**: v' = v + ((1 - k·limit)·mean(r) - mean(v)), so the population's relative
  loss is exactly k x the limit while the per-query spread stays the variant's own (k = 0, 0.5, 1, 2, 4).

At k = 1 a decision of pass is the error the gate must keep at or under 5%; at k = 0 a fail is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from quantgate.decisions.decision import Sequence, decide
from quantgate.evaluation.data import load
from quantgate.evaluation.quality import evaluate_scores
from quantgate.evaluation.scoring import load_scores

LIMITS = {"map": 0.01, "ndcg_at_10": 0.0155}
MIN_QUERIES = 100  # thresholds.toml [decision] min_queries (--min-queries)
ALPHA = 0.03  # 1 - thresholds.toml [decision] confidence (--confidence)


def per_query(data, folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> metric -> qid -> value, by mteb's evaluator on the saved scores."""
    out = {}
    for file in sorted(folder.glob("*.npz")):
        out[file.stem] = evaluate_scores(data, load_scores(file), file.stem).per_query
    return out


def simulate(ref: np.ndarray, var: np.ndarray, limit: float, runs: int, rng: np.random.Generator, first: int,
             budget: int | None = None, sequential: bool = True, other: np.ndarray | None = None,
             share: float = 0.0) -> dict[str, float]:
    """Decisions of `runs` simulated gate runs. With `other`, each drawn query takes the other variant's value
    with probability `share` (a mixture of two real variants)."""
    n = budget or len(ref)
    sequence = Sequence(n, first if sequential else n, ALPHA)
    counts = {"pass": 0, "fail": 0, "inconclusive": 0}
    used = 0
    for _ in range(runs):
        idx = rng.integers(0, len(ref), n)
        values = var[idx] if other is None else np.where(rng.random(n) < share, other[idx], var[idx])
        for look, k in enumerate(sequence.looks):
            result = decide(ref[idx[:k]], values[:k], limit, sequence.critical(look), MIN_QUERIES)[0]
            if result != "inconclusive":
                break
        counts[result] += 1
        used += k
    return {**{d: c / runs for d, c in counts.items()}, "mean_queries": used / runs, "queries": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--scores", required=True, help="folder of <variant>.npz from scripts/per_query_scores.py")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-look", type=int, default=20)
    parser.add_argument("--confidence", type=float, default=0.97, help="thresholds.toml [decision] confidence")
    parser.add_argument("--min-queries", type=int, default=100, help="thresholds.toml [decision] min_queries")
    parser.add_argument("--budgets", default="", help="also simulate these smaller query budgets, e.g. 12,20,40")
    parser.add_argument("--mix", default="", help="BETTER,WORSE: also mixtures of two real variants' per-query "
                        "values at 0, 0.5, 1, 2, 4 x the limit (the worse one's loss must exceed 4 x the limit)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    global MIN_QUERIES, ALPHA  # one setting for every simulate() call of this script
    MIN_QUERIES, ALPHA = args.min_queries, 1 - args.confidence
    data = load(args.data)
    values = per_query(data, Path(args.scores))
    reference = values.pop("torch-fp32")
    rng = np.random.default_rng(args.seed)
    rows = []
    for metric, limit in LIMITS.items():
        qids = sorted(reference[metric])
        r = np.array([reference[metric][q] for q in qids])
        populations = {"torch-fp32 (itself)": r, **{v: np.array([pq[metric].get(q, 0.0) for q in qids])
                                                    for v, pq in values.items()}}
        for name, v in populations.items():
            measured = (r.mean() - v.mean()) / r.mean()
            row = {"metric": metric, "variant": name, "loss_on_set": measured, "limit": limit,
                   "sd_per_query_diff": float(np.std(r - v, ddof=1)), "as_measured": simulate(
                       r, v, limit, args.runs, rng, args.first_look)}
            for k in (0.0, 0.5, 1.0, 2.0, 4.0):
                shifted = v + ((1 - k * limit) * r.mean() - v.mean())
                row[f"x{k:g}"] = simulate(r, shifted, limit, args.runs, rng, args.first_look)
                row[f"x{k:g}_one_look"] = simulate(r, shifted, limit, args.runs, rng, args.first_look,
                                                   sequential=False)
            for budget in filter(None, args.budgets.split(",")):
                shifted = v + ((1 - limit) * r.mean() - v.mean())
                row[f"x1_budget{budget}"] = simulate(r, shifted, limit, args.runs, rng, args.first_look, int(budget))
                row[f"x0_budget{budget}"] = simulate(r, v + (r.mean() - v.mean()), limit, args.runs, rng,
                                                     args.first_look, int(budget))
            rows.append(row)
            print(_line(row), flush=True)
        if args.mix:
            better, worse = (np.array([values[v][metric].get(q, 0.0) for q in qids]) for v in args.mix.split(","))
            losses = [(r.mean() - x.mean()) / r.mean() for x in (better, worse)]
            row = {"metric": metric, "variant": f"mixture {args.mix}", "losses": losses, "limit": limit}
            for k in (0.0, 0.5, 1.0, 2.0, 4.0):
                share = (k * limit - losses[0]) / (losses[1] - losses[0])
                if 0 <= share <= 1:
                    row[f"x{k:g}"] = simulate(r, better, limit, args.runs, rng, args.first_look, other=worse,
                                              share=share)
                    row[f"x{k:g}_one_look"] = simulate(r, better, limit, args.runs, rng, args.first_look,
                                                       sequential=False, other=worse, share=share)
            rows.append(row)
            print(" | ".join(f"{key}: P {v['pass']:.3f} F {v['fail']:.3f} q {v['mean_queries']:.0f}"
                             for key, v in row.items() if isinstance(v, dict)), f"({row['variant']}, {metric})",
                  flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": args.runs, "seed": args.seed, "rows": rows}, indent=1))


def _line(row: dict) -> str:
    cells = [f"{row['metric']:10s} {row['variant']:24s} loss {row['loss_on_set']:+.2%} "
             f"sd {row['sd_per_query_diff']:.3f}",
             f"measured: P {row['as_measured']['pass']:.3f} F {row['as_measured']['fail']:.3f} "
             f"q {row['as_measured']['mean_queries']:.0f}"]
    for k in ("0", "0.5", "1", "2", "4"):
        s, o = row[f"x{k}"], row[f"x{k}_one_look"]
        cells.append(f"x{k}: P {s['pass']:.3f} F {s['fail']:.3f} q {s['mean_queries']:.0f} "
                     f"(1 look P {o['pass']:.3f} F {o['fail']:.3f})")
    cells += [f"{key}: P {row[key]['pass']:.3f} F {row[key]['fail']:.3f}" for key in row if "budget" in key]
    return " | ".join(cells)


if __name__ == "__main__":
    main()
