"""`quantgate ...` subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from quantgate.session.settings import REPORT_DIR


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gate"]:
        return gate(argv[1:])
    parser = argparse.ArgumentParser(prog="quantgate", description="model regression and quantization gate")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("gate", help="run the gate from anywhere: `pytest --pyargs quantgate.gates` with the same options "
                                "and the team's own test paths, rooted in the working directory (quantgate gate "
                                "my_gates/ --candidate DIR --gate-data DIR ...; quantgate gate --help)")
    history = sub.add_parser("history", help="quality and speed of each variant over runs: tables and plots, "
                                             "decided regressions between consecutive runs marked")
    history.add_argument("--verdicts", default=None,
                         help="kept verdicts (default: quantgate-verdicts/ in --storage: the gate's --gate-history)")
    history.add_argument("--thresholds", default=None,
                         help="[regression] and [decision] for the marks (default: thresholds.toml here, else the "
                              "packaged one)")
    history.add_argument("--quality-plot", default=f"{REPORT_DIR}/quality-history.png",
                         help="PNG to draw (default %(default)s)")
    history.add_argument("--storage", default=".benchmarks", help="pytest-benchmark storage (default .benchmarks)")
    history.add_argument("--last", type=int, default=10, help="runs per variant and batch (default 10)")
    history.add_argument("--variants", default=None, help="comma-separated variant ids (default: all)")
    history.add_argument("--all-machines", action="store_true", help="include runs from other machines")
    history.add_argument("--plot", default=f"{REPORT_DIR}/speed-history.png", help="PNG to draw (default %(default)s)")
    pub = sub.add_parser("publish", help="push the artifacts the gate passed to the Hugging Face Hub")
    pub.add_argument("--verdict", default=f"{REPORT_DIR}/verdict.json")
    pub.add_argument("--repo-id", required=True, help="ORG/NAME on the hub")
    pub.add_argument("--variants", default=None, help="comma-separated ids (default: every variant that passed)")
    pub.add_argument("--thresholds", default=None,
                     help="the thresholds file the verdict must have been gated against (default: the one it was: "
                          "verdict.json records its path and sha256, and a file changed since is refused)")
    pub.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to main")
    pub.add_argument("--dry-run", action="store_true", help="list what would be pushed; push nothing")
    rep = sub.add_parser("report", help="rewrite summary.md and pareto.png from a verdict")
    rep.add_argument("--verdict", default=f"{REPORT_DIR}/verdict.json")
    merge = sub.add_parser("merge", help="merge the verdicts of sharded runs (--gate-shard I/N) into one verdict, "
                                         "summary and plot")
    merge.add_argument("shards", nargs="+", help="each shard's --gate-report folder (or its verdict.json)")
    merge.add_argument("--out", default=REPORT_DIR, help="where the merged reports go (default %(default)s)")
    merge.add_argument("--benchmarks", nargs="*", default=[], help="the shards' --benchmark-json files, merged into "
                                                                    "OUT/benchmarks.json")
    merge.add_argument("--history", default=".benchmarks/quantgate-verdicts",
                       help="where a complete merged verdict is kept for `quantgate history` (default %(default)s)")
    split = sub.add_parser("split", help="split a BEIR folder's test queries into disjoint validation and "
                                         "evaluation folders (for accuracy-controlled int8)")
    split.add_argument("data", help="BEIR-format folder with qrels/test.tsv")
    split.add_argument("--out", required=True, help="folder to write validation/ and evaluation/ into")
    split.add_argument("--validation", type=int, default=100, help="test queries to hold out (default 100)")
    split.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "split":
        return _split(args)
    if args.command == "history":
        return _history(args)
    if args.command in VERDICT_COMMANDS:
        return _reading_verdicts(args)
    return 2


def _reading_verdicts(args) -> int:
    """merge, publish and report read verdicts that a person may have edited or cut: whatever a file holds, the answer
    is a result or one line (exit 2), never a traceback; the traceback goes to a log file the line names."""
    import tempfile
    import traceback

    from quantgate.logs import root_cause

    try:
        return VERDICT_COMMANDS[args.command](args)
    except Exception as err:  # what the checks before it let through: one line, not the library's traceback
        log = Path(tempfile.gettempdir()) / f"quantgate-{args.command}-error.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        print(f"quantgate {args.command}: a verdict this quantgate cannot use ({root_cause(err)}; traceback: {log}); "
              "gate again, or restore the verdict.json the gate wrote", file=sys.stderr)
        return 2


def gate(args: list[str]) -> int:
    """The gates shipped in the package, run by pytest with the given options and any test paths of the team's
    own (`quantgate gate my_gates/`: one session, one verdict; the plugin comes through its pytest11 entry
    point). The rootdir is the working directory (a --rootdir given wins), so the team's thresholds.toml and
    conftest.py there are found wherever the package is installed."""
    import pytest

    return int(pytest.main(["--rootdir", os.getcwd(), "--pyargs", "quantgate.gates", *args]))


def _publish(args) -> int:
    from quantgate.publish import publish

    verdict = Path(args.verdict)
    if not verdict.is_file():
        print(f"quantgate publish: {verdict} not found; run `pytest gates/` first", file=sys.stderr)
        return 2
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    return publish(verdict, args.repo_id, thresholds=args.thresholds, variants=variants, create_pr=args.create_pr,
                   dry_run=args.dry_run)


def _merge(args) -> int:
    from quantgate.core.cache import write_json_atomic
    from quantgate.core.results import RunResult
    from quantgate.reporting.report import write_reports
    from quantgate.results.merge import MergeError, check_out, merge_benchmarks, merge_verdicts, read_verdict
    from quantgate.results.verdict import VerdictFormatError

    out = Path(args.out)
    try:  # every input read and checked before anything is written
        shards = [read_verdict(p) for p in args.shards]
        check_out(out, [file for file, _ in shards], args.benchmarks)
        verdict = merge_verdicts(shards)
        merged = RunResult.from_dict(verdict)
        owners = {vid: result.shard for vid, result in merged.variants.items()}
        benchmarks = merge_benchmarks(args.benchmarks, owners) if args.benchmarks else None
    except (MergeError, VerdictFormatError) as err:
        print(f"quantgate merge: {err}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json_atomic(out / "verdict.json", verdict), *write_reports(verdict, out)]
    if benchmarks is not None:
        written.append(write_json_atomic(out / "benchmarks.json", benchmarks))
    for path in written:
        print(path)
    if merged.complete:
        from quantgate.results.history import keep

        written.append(keep(out / "verdict.json", Path(args.history)))
    print(f"merged {len(args.shards)} shards: {len(merged.variants)} variants, {len(merged.passed)} passed"
          f"{'' if merged.complete else ' (a shard did not finish: nothing passes)'}")
    return 0


def _split(args) -> int:
    from quantgate.evaluation.data import DataFormatError
    from quantgate.evaluation.splits import split_test

    try:
        validation, evaluation = split_test(args.data, args.out, args.validation, args.seed)
    except DataFormatError as err:
        print(f"quantgate split: {err}", file=sys.stderr)
        return 2
    print(f"validation: {validation}\nevaluation: {evaluation}\n"
          f"use: pytest gates/ --gate-data {evaluation} --gate-validation-data {validation}")
    return 0


def _report(args) -> int:
    from quantgate.reporting.report import write_reports
    from quantgate.results.verdict import VerdictFormatError
    from quantgate.results.verdict import read as read_verdict

    verdict = Path(args.verdict)
    try:
        data = read_verdict(verdict)
    except VerdictFormatError as err:
        print(f"quantgate report: {err}", file=sys.stderr)
        return 2
    for path in write_reports(data, verdict.parent):
        print(path)
    return 0


def _history(args) -> int:
    from quantgate.reporting.report import history_plot, history_table
    from quantgate.speed.bench import load_history, machine_key

    shown = _quality_history(args)
    points = load_history(args.storage, None if args.all_machines else machine_key())
    if args.variants:
        wanted = {v.strip() for v in args.variants.split(",")}
        points = [p for p in points if p.variant in wanted]
    if not points:
        print(f"quantgate history: no saved speed runs in {args.storage} for this machine (pytest-benchmark: "
              "`pytest gates/ -k speed --benchmark-autosave`)", file=sys.stderr)
        return 0 if shown else 1
    print("\nspeed, pytest-benchmark's storage (this machine):")
    print(history_table(points, args.last))
    path = history_plot(points, Path(args.plot), args.last)
    print(f"\nplot: {path}")
    return 0


def _quality_history(args) -> bool:
    """Quality per variant and data set over the kept verdicts; False when there are none."""
    from quantgate.config import default_thresholds_path, load_thresholds
    from quantgate.core.results import RunResult
    from quantgate.reporting.report import quality_history_plot
    from quantgate.results import history
    from quantgate.results.verdict import only

    folder = Path(args.verdicts or Path(args.storage.removeprefix("file://")) / "quantgate-verdicts")
    runs, skipped = history.load(folder)
    for line in skipped:
        print(f"quantgate history: skipped {line}", file=sys.stderr)
    if not runs:
        print(f"quantgate history: no kept verdicts in {folder} (every complete gate run keeps one)", file=sys.stderr)
        return False
    if args.variants:
        wanted = {v.strip() for v in args.variants.split(",")}
        runs = [only(r, [v for v in RunResult.from_dict(r).variants if v in wanted]) for r in runs]
    t = load_thresholds(args.thresholds or default_thresholds_path(Path.cwd()))
    all_series = history.series(runs, t.regression_limit, t.decision["confidence"], t.decision["min_queries"])
    print(f"quality, {len(runs)} kept verdicts in {folder}:")
    print(history.quality_table(runs, all_series, args.last))
    print(f"\nplot: {quality_history_plot(runs, all_series, Path(args.quality_plot), args.last)}")
    return True


VERDICT_COMMANDS = {"merge": _merge, "publish": _publish, "report": _report}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
