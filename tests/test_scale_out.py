"""Scale-out: pytest-xdist workers and --gate-shard I/N give the verdict one run gives."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from quantgate.core.formats import DEFAULT_FORMATS
from quantgate.results.judged import JudgedSettings
from quantgate.results.merge import MergeError, merge_verdicts
from quantgate.session.settings import shard
from quantgate.variants.registry import REFERENCE_ID, VARIANTS
from tests.conftest import ROOT
from tests.test_plugin import run_gate

pytestmark = pytest.mark.slow  # gate runs of minutes: CI's fresh-machine part leaves them to the full part

VARIANTS_UNDER_TEST = "torch-fp32,onnx,onnx-O2,onnx-qint8-avx2,openvino,openvino-qint8"
# Every run gates the same first 80 queries (looks at 20, 40, 80) with 64 calibration inputs, and the timed runs
# time 20 latency inputs in one round: what is compared is that the runs agree. (Measured: the module took 242 s
# against 246 s with the defaults; the single run's ~100 s are spread over builds, scoring and batch invariance.)
SAME_RUN = ("--variants", VARIANTS_UNDER_TEST, "--gate-max-queries", "80", "--gate-calibration-size", "64")
TIMED = ("--gate-speed-rounds", "1", "--gate-latency-inputs", "20")


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_cover_the_matrix_once_and_each_runs_the_reference(count):
    specs = list(VARIANTS.values())
    owned = []
    for index in range(1, count + 1):
        runs, owns = shard(specs, index, count)
        assert runs[0].id == REFERENCE_ID and set(owns) <= {s.id for s in runs}
        assert shard(specs, index, count) == (runs, owns)  # deterministic
        owned += owns
    assert sorted(owned) == sorted(VARIANTS)


def _verdict(index: int, count: int, owns: list[str], **changes) -> tuple:
    verdict = {"candidate": {"sha256": "c"}, "thresholds": {"sha256": "t"}, "data": [], "subset": {},
               "libraries": {"torch": "2.13.0"}, "complete": True,
               "shard": {"index": index, "count": count, "owns": owns},
               "variants": {vid: {"passed": True, "gates": {}, "failures": []} for vid in {REFERENCE_ID, *owns}}}
    verdict.update(changes)
    return (f"shard{index}", verdict)


def test_merge_refuses_shards_of_different_runs_or_a_missing_shard():
    with pytest.raises(MergeError, match="differ in thresholds"):
        merge_verdicts([_verdict(1, 2, [REFERENCE_ID]), _verdict(2, 2, ["onnx"], thresholds={"sha256": "x"})])
    with pytest.raises(MergeError, match="exactly once"):
        merge_verdicts([_verdict(1, 3, [REFERENCE_ID]), _verdict(2, 3, ["onnx"])])
    merged = merge_verdicts([_verdict(1, 2, [REFERENCE_ID]), _verdict(2, 2, ["onnx"], complete=False)])
    assert not merged["complete"] and not any(v["passed"] for v in merged["variants"].values())


def test_merge_refuses_shards_judged_with_other_settings_and_names_the_setting():
    """A shard gated with --gate-embedding-formats float32,int8 and one with the defaults (merged before: shard 2's
    formats silently dropped); the same for prompts. Equal settings merge."""
    judged = JudgedSettings(thresholds_sha256="t", data=("d",), embedding_formats=("float32", "int8"))
    other = dataclasses.replace(judged, embedding_formats=tuple(DEFAULT_FORMATS.split(",")))
    said = r"differ in stored formats \(--gate-embedding-formats\) \(float32,int8 vs float32,"
    with pytest.raises(MergeError, match=said):
        merge_verdicts([_verdict(1, 2, [REFERENCE_ID], judged=other.to_dict()),
                        _verdict(2, 2, ["onnx"], judged=judged.to_dict())])
    prompted = dataclasses.replace(judged, encoding='{"prompts": {"retrieval": {"query": "query: "}}}')
    with pytest.raises(MergeError, match="differ in prompts and similarity"):
        merge_verdicts([_verdict(1, 2, [REFERENCE_ID], judged=judged.to_dict()),
                        _verdict(2, 2, ["onnx"], judged=prompted.to_dict())])
    with pytest.raises(MergeError, match="one records what it judged and the other does not"):
        merge_verdicts([_verdict(1, 2, [REFERENCE_ID], judged=judged.to_dict()), _verdict(2, 2, ["onnx"])])
    merged = merge_verdicts([_verdict(1, 2, [REFERENCE_ID], judged=judged.to_dict()),
                             _verdict(2, 2, ["onnx"], judged=judged.to_dict())])
    assert merged["judged"] == judged.to_dict() and JudgedSettings.from_dict(merged["judged"]) == judged


def test_merge_never_writes_over_its_inputs(tmp_path):
    """`quantgate merge gate-report r2`: shard 1's default report folder is merge's default --out. Refused with one
    line, before anything is written; so is an unreadable --benchmarks file."""
    from quantgate.results.verdict import FORMAT

    folders = []
    for index, owns in ((1, [REFERENCE_ID]), (2, ["onnx"])):
        folder = tmp_path / ("gate-report" if index == 1 else "r2")
        folder.mkdir()
        (folder / "verdict.json").write_text(json.dumps({"format": FORMAT, **_verdict(index, 2, owns)[1]}))
        folders.append(folder)
    before = {f: (f / "verdict.json").read_bytes() for f in folders}

    def merge(*args):
        return subprocess.run([sys.executable, "-m", "quantgate.cli", "merge", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=False)

    refused = merge("gate-report", "r2")
    assert refused.returncode == 2 and "merging there would overwrite it" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    (tmp_path / "broken.json").write_text("{not json")
    unreadable = merge("gate-report", "r2", "--out", "merged", "--benchmarks", "broken.json")
    assert unreadable.returncode == 2 and "broken.json: not a readable --benchmark-json file" in unreadable.stderr
    assert not (tmp_path / "merged").exists()
    assert {f: (f / "verdict.json").read_bytes() for f in folders} == before and \
        sorted(p.name for p in folders[0].iterdir()) == ["verdict.json"]
    done = merge("gate-report", "r2", "--out", "merged", "--history", "history")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "merged" / "verdict.json").read_text())["complete"]


def _outcome(verdict: dict) -> dict:
    """Per variant: pass/fail and every quality number (the agreement numbers too)."""
    out = {}
    for vid, entry in verdict["variants"].items():
        gates = entry["gates"]
        out[vid] = {
            "passed": entry["passed"],
            "quality": [(l["dataset"], l["metric"], l["reference"], l["variant"], l["loss"], l["low"], l["high"],
                         l["decision"], l["queries"]) for l in gates.get("quality", {}).get("decisions", [])],
            "agreement": [r["metrics"] for r in gates.get("agreement", {}).get("results", [])],
        }
    return out


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("single")
    out = run_gate("-q", *SAME_RUN, *TIMED, "--gate-cache", str(root / "cache"), "--gate-report", str(root / "report"))
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
    return root, json.loads((root / "report" / "verdict.json").read_text())


def test_two_shards_merged_give_the_single_runs_verdict(single_run, tmp_path):
    root, single = single_run
    reports = []
    for index in (1, 2):
        report = tmp_path / f"shard{index}"
        out = run_gate("-q", *SAME_RUN, *TIMED, "--gate-cache", str(root / "cache"), "--gate-report", str(report),
                       "--gate-shard", f"{index}/2", f"--benchmark-json={report}.json")
        assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
        shard_info = json.loads((report / "verdict.json").read_text())["shard"]
        assert shard_info["index"] == index and shard_info["count"] == 2 and shard_info["owns"]
        reports.append(report)
    merged = subprocess.run([sys.executable, "-m", "quantgate.cli", "merge", *map(str, reports), "--out",
                             str(tmp_path / "merged"), "--benchmarks", *(f"{r}.json" for r in reports),
                             "--history", str(tmp_path / "history")],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert merged.returncode == 0, merged.stderr
    verdict = json.loads((tmp_path / "merged" / "verdict.json").read_text())
    assert verdict["complete"] and _outcome(verdict) == _outcome(single)
    benchmarks = json.loads((tmp_path / "merged" / "benchmarks.json").read_text())["benchmarks"]
    variants = sorted({b["extra_info"]["variant"] for b in benchmarks})
    assert variants == sorted(VARIANTS_UNDER_TEST.split(",")) and len(benchmarks) == 2 * len(variants)  # b1, b32 once
    assert "## Recommendation" in (tmp_path / "merged" / "summary.md").read_text()
    assert len(list((tmp_path / "history").glob("verdict-*.json"))) == 1  # the merged run is kept, not the shards


def test_xdist_workers_give_one_verdict_and_share_the_reference(single_run, tmp_path):
    root, single = single_run
    out = run_gate("-n", "2", "-rs", *SAME_RUN, "--gate-cache", str(root / "cache"),
                   "--gate-report", str(tmp_path / "report"))
    assert out.returncode in (0, 1), out.stdout[-3000:] + out.stderr[-2000:]
    verdict = json.loads((tmp_path / "report" / "verdict.json").read_text())
    parallel, serial = _outcome(verdict), _outcome(single)
    assert {vid: (o["passed"], o["quality"]) for vid, o in parallel.items()} == \
        {vid: (o["passed"], o["quality"]) for vid, o in serial.items()}
    assert "pytest-benchmark is disabled (it is under pytest-xdist" in out.stdout  # speed is measured without -n
    assert re.search(r"artifacts built this run: 0; from cache: \d+", out.stdout), out.stdout[-2000:]
    assert list((root / "cache" / "scores").glob(f"{REFERENCE_ID}-*.npz"))  # the reference, scored once
    assert verdict["threads"] == max(1, (os.cpu_count() or 1) // 2)  # the cores split over the workers
