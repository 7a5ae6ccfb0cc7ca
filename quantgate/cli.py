"""`quantgate ...` subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quantgate", description="model regression and quantization gate")
    sub = parser.add_subparsers(dest="command", required=True)
    history = sub.add_parser("history", help="speed history of each variant on this machine: table and plot")
    history.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage (default .benchmarks)")
    history.add_argument("--last", type=int, default=10, help="runs per variant and batch (default 10)")
    history.add_argument("--variants", default=None, help="comma-separated variant ids (default: all)")
    history.add_argument("--all-machines", action="store_true", help="include runs from other machines")
    history.add_argument("--plot", default="gate-report/speed-history.png", help="PNG to draw (default %(default)s)")
    pub = sub.add_parser("publish", help="push the artifacts the gate passed to the Hugging Face Hub")
    pub.add_argument("--verdict", default="gate-report/verdict.json")
    pub.add_argument("--repo-id", required=True, help="ORG/NAME on the hub")
    pub.add_argument("--variants", default=None, help="comma-separated ids (default: every variant that passed)")
    pub.add_argument("--thresholds", default="thresholds.toml", help="the current thresholds file (default %(default)s)")
    pub.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    pub.add_argument("--dry-run", action="store_true", help="list what would be pushed; push nothing")
    rep = sub.add_parser("report", help="rewrite summary.md and pareto.png from a verdict")
    rep.add_argument("--verdict", default="gate-report/verdict.json")
    args = parser.parse_args(argv)
    if args.command == "history":
        return _history(args)
    if args.command == "publish":
        return _publish(args)
    if args.command == "report":
        return _report(args)
    return 2


def _publish(args) -> int:
    from quantgate.publish import publish

    verdict = Path(args.verdict)
    if not verdict.is_file():
        print(f"quantgate publish: {verdict} not found; run `pytest gates/` first", file=sys.stderr)
        return 2
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    return publish(verdict, args.repo_id, thresholds=args.thresholds, variants=variants, create_pr=args.create_pr,
                   dry_run=args.dry_run)


def _report(args) -> int:
    import json

    from quantgate.report import write_reports

    verdict = Path(args.verdict)
    for path in write_reports(json.loads(verdict.read_text()), verdict.parent):
        print(path)
    return 0


def _history(args) -> int:
    from quantgate.bench import load_history, machine_key
    from quantgate.report import history_plot, history_table

    points = load_history(args.storage, None if args.all_machines else machine_key())
    if args.variants:
        wanted = {v.strip() for v in args.variants.split(",")}
        points = [p for p in points if p.variant in wanted]
    if not points:
        print(f"quantgate history: no saved speed runs in {args.storage} for this machine; run "
              "`pytest gates/ -k speed --benchmark-autosave` first", file=sys.stderr)
        return 1
    print(history_table(points, args.last))
    path = history_plot(points, Path(args.plot), args.last)
    print(f"\nplot: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
