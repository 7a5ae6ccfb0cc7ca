"""`quantgate merge`: the verdicts (and pytest-benchmark JSONs) of sharded runs as one.

Each shard (`--gate-shard I/N`) writes its own verdict; merging checks that they gated the same
candidate with the same thresholds, data, subset and libraries, that every shard 1..N is there
exactly once, and takes each variant from the shard that owns it (the reference runs in every
shard; its owner reports it). A merged run is complete only when every shard was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantgate.errors import QuantgateUsageError
from quantgate.results import verdict as verdict_file
from quantgate.results.judged import JudgedSettings
from quantgate.results.verdict import Verdict

SAME = ("candidate", "baseline", "thresholds", "data", "subset", "libraries")


class MergeError(QuantgateUsageError):
    """Shards that cannot be merged: the message says which and why."""


def read_verdict(path: str | Path) -> tuple[Path, dict[str, Any]]:
    path = Path(path)
    file = path / "verdict.json" if path.is_dir() else path
    if not file.is_file():
        raise MergeError(f"{path}: no verdict.json (pass a shard's --gate-report folder or its verdict.json)")
    return file, verdict_file.read(file)


def merge_verdicts(shards: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    if not shards:
        raise MergeError("nothing to merge: pass the shards' report folders")
    first_path, first = shards[0]
    judged = JudgedSettings.from_dict(first.get("judged"))
    for path, verdict in shards[1:]:
        theirs = JudgedSettings.from_dict(verdict.get("judged"))
        if (judged is None) != (theirs is None):
            raise MergeError(f"{path} and {first_path}: one records what it judged and the other does not (another "
                             "quantgate version): gate the shards again with one version")
        if judged is not None and (differ := theirs.differences(judged)):
            raise MergeError(f"{path} and {first_path} differ in {'; '.join(differ)}: they are not shards of one "
                             "gate run; gate every shard with the same settings")
        for key in SAME:
            if verdict.get(key) != first.get(key):
                raise MergeError(f"{path} and {first_path} differ in {key}: they are not shards of one gate run")
    counts = {(v.get("shard") or {}).get("count") for _, v in shards}
    indexes = sorted((v.get("shard") or {}).get("index", 0) for _, v in shards)
    if len(counts) != 1 or None in counts or indexes != list(range(1, len(shards) + 1)) or counts != {len(shards)}:
        found = ", ".join(f"{(v.get('shard') or {}).get('index', '?')}/{(v.get('shard') or {}).get('count', '?')}"
                          for _, v in shards)
        raise MergeError(f"expected shards 1/N..N/N exactly once each, got {found}")
    complete = all(v.get("complete") for _, v in shards)
    merged = Verdict({k: v for k, v in first.items()
                      if k not in ("variants", "shard", "complete", "scoring_seconds", "format", "written_at")})
    for _, verdict in shards:
        owned = {vid: {**entry, "shard": verdict["shard"]["index"]} for vid, entry in verdict["variants"].items()}
        merged.merge({"variants": owned, "scoring_seconds": verdict.get("scoring_seconds", {})},
                     only=verdict["shard"]["owns"])
    out = merged.to_dict(complete)
    regression = next((v["regression"] for _, v in shards if v["shard"]["index"] == 1 and "regression" in v), None)
    if regression is not None:  # the candidate against its baseline is gated by shard 1 alone
        out["regression"] = regression
    return {**out, **{k: first[k] for k in ("machine", "libraries") if k in first},
            "merged_from": [str(p) for p, _ in shards], "shard": None}


def merge_benchmarks(files: list[str | Path], owners: dict[str, int]) -> dict[str, Any]:
    """pytest-benchmark JSONs (--benchmark-json) of the shards as one: each variant's benchmarks
    from the shard that owns it (`owners`: variant -> shard index, from the merged verdict)."""
    merged: dict[str, Any] | None = None
    benchmarks = []
    for index, file in enumerate(files, 1):
        try:
            data = json.loads(Path(file).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise MergeError(f"{file}: not a readable --benchmark-json file ({err})") from None
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            raise MergeError(f"{file}: not a pytest-benchmark JSON (no \"benchmarks\" list)")
        merged = merged or {k: v for k, v in data.items() if k != "benchmarks"}
        for bench in data.get("benchmarks", []):
            variant = (bench.get("extra_info") or {}).get("variant")
            shard = (bench.get("extra_info") or {}).get("shard") or index
            if variant is None or owners.get(variant, shard) == shard:
                benchmarks.append(bench)
    return {**(merged or {}), "benchmarks": benchmarks}


def check_out(out: Path, shard_files: list[Path], benchmark_files: list[str | Path]) -> None:
    """Refuse an output folder that would overwrite an input: a shard's own report folder (its verdict.json,
    summary.md and plot) or one of the --benchmarks files. `quantgate merge gate-report r2` is the common case:
    shard 1's default report folder and merge's default --out are the same."""
    target = out.resolve()
    for file in shard_files:
        if file.resolve().parent == target:
            raise MergeError(f"--out {out} is the report folder of the shard {file}: merging there would overwrite "
                             "it; pass another --out, e.g. --out merged-report")
    for file in benchmark_files:
        if Path(file).resolve() == target / "benchmarks.json":
            raise MergeError(f"--out {out} would overwrite the input {file}; pass another --out")
