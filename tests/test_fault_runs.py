"""Faults through a whole gate run and the tools around the verdict (docs/faults.md): a bad input stops the gate with
one line before any build, a cut verdict is named by every command, an artifact that crashes is a failed row."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_candidate_files import _cut
from tests.test_inputs import _copy, _relevant_gone


def _degenerate_data(tmp: Path) -> list[str]:
    folder = _copy(tmp)
    _relevant_gone(folder)
    return ["--gate-data", str(folder)]


def _cut_candidate(tmp: Path) -> list[str]:
    from quantgate.core.candidate import default_candidate_path

    folder = tmp / "model"
    shutil.copytree(default_candidate_path(), folder)
    _cut("model.safetensors", 1 << 20)(folder)
    return ["--candidate", str(folder)]


def _report_is_a_file(tmp: Path) -> list[str]:
    (tmp / "report-file").write_text("not a folder")
    return ["--gate-report", str(tmp / "report-file")]


@pytest.mark.parametrize("fault, message", [
    (_degenerate_data, "no test query has a judged relevant document"),
    (_cut_candidate, "not a complete safetensors file"),
    (_report_is_a_file, "cannot be written"),
], ids=["degenerate-data", "truncated-weights", "report-is-a-file"])
def test_a_bad_input_stops_the_gate_with_one_line_before_any_build(tmp_path, fault, message):
    from tests.test_plugin import run_gate

    args = fault(tmp_path)
    if "--gate-report" not in args:
        args += ["--gate-report", str(tmp_path / "report")]
    out = run_gate("-q", "--variants", "torch-fp32,onnx", "--gate-cache", str(tmp_path / "cache"), *args, timeout=300)
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout[-2000:]
    assert out.stdout.count(message) == 1 and "Traceback" not in out.stdout + out.stderr, out.stdout[-2000:]
    assert "building" not in out.stdout and not (tmp_path / "cache").exists()


# -- the tools around the verdict ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["publish", "report", "merge"])
def test_a_cut_verdict_is_named_with_its_problem_by_every_command(tmp_path, command):
    """A verdict.json copied half way: publish, report and merge name the file and say it ends early, exit non-zero,
    and write nothing."""
    import subprocess
    import sys

    from quantgate.results.verdict import FORMAT

    good = json.dumps({"format": FORMAT, "complete": True, "variants": {"onnx": {"gates": {}}}}, indent=2)
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "verdict.json").write_text(good[: len(good) // 2])
    args = {"publish": ["publish", "--verdict", str(folder / "verdict.json"), "--repo-id", "org/model", "--dry-run"],
            "report": ["report", "--verdict", str(folder / "verdict.json")],
            "merge": ["merge", str(folder), str(folder), "--out", str(tmp_path / "merged")]}[command]
    out = subprocess.run([sys.executable, "-m", "quantgate.cli", *args], capture_output=True, text=True, timeout=120)
    said = out.stdout + out.stderr
    expected = f"{folder / 'verdict.json'}: not a readable verdict (the file ends early"
    assert out.returncode != 0 and expected in said, said
    assert "Traceback" not in said and sorted(p.name for p in folder.iterdir()) == ["verdict.json"]
    assert not (tmp_path / "merged").exists()


def test_an_external_artifact_that_crashes_is_a_failed_row_of_a_complete_verdict(tmp_path):
    """An ONNX file with other input names than the tokenizer gives: every gate of it crashes. The verdict lists it
    as fail with the root cause in each gate; the recommendation is another variant; publish would refuse it."""
    import onnx
    from onnx import TensorProto, helper

    from tests.test_plugin import run_gate

    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 4]) for n in "xy")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other-inputs", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "model.onnx")
    out = run_gate("-q", "--variants", "torch-fp32", "--gate-artifact", f"theirs={tmp_path / 'model.onnx'}",
                   "-k", "not speed", "--gate-cache", str(tmp_path / "cache"), "--gate-report", str(tmp_path / "r"),
                   timeout=600)
    assert out.returncode == 1, out.stdout[-2000:]
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    entry = verdict["variants"]["theirs"]
    assert verdict["complete"] and entry["decision"] == "fail" and entry["gates"]["build"]["passed"] is False
    assert all("Input x is required" in line for line in entry["failures"]), entry["failures"]
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "| `theirs` | ❌ fail |" in summary and "Traceback" not in out.stdout
