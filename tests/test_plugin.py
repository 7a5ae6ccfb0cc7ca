"""The pytest plugin end to end: collection, order, options, skips and one clear error per bad input, through
pytester (in-process, isolated: the packaged gates by `--pyargs quantgate.gates`); what needs a fresh process (what
`--help` imports) or a real run's subprocess stays a subprocess."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import forked
from tests.conftest import ROOT
from tests.test_registry import DEFAULT_IDS, SEED_IDS


def run_gate(*args: str, timeout: int = 1800, path: str = "gates/") -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # no hub here: fail fast instead of retrying
    if "--gate-report" in args and "--gate-history" not in args:  # kept verdicts beside the report, not in ROOT
        args = (*args, "--gate-history", str(Path(args[args.index("--gate-report") + 1]) / "history"))
    if not any(a.startswith("--gate-embedding-formats") for a in args):  # tested in tests/test_formats.py; here
        args = (*args, "--gate-embedding-formats", "none")  # each run keeps to its subject
    return forked.run_gate([path, "-p", "no:cacheprovider", *args], cwd=ROOT, env=env, timeout=timeout)


pytest_plugins = ["pytester"]


def collected_ids(out: str) -> list[str]:
    return re.findall(r"test_variant_builds_and_scores\[([^\]]+)\]", out)


@pytest.fixture
def collect(pytester: pytest.Pytester, native_libraries):
    """`pytest --pyargs quantgate.gates --collect-only ARGS` in-process: (exit code, stdout, stderr)."""
    def run(*args: str, quiet: bool = True) -> tuple[int, str, str]:
        result = pytester.runpytest_inprocess("--pyargs", "quantgate.gates", "--collect-only",
                                              *(["-q"] if quiet else []), "--gate-embedding-formats", "none", *args)
        return int(result.ret), result.stdout.str(), result.stderr.str()
    return run


def test_collect_lists_every_id_for_the_embedder(collect):
    code, out, err = collect()
    assert code == 0, err
    assert collected_ids(out) == DEFAULT_IDS


def test_every_gate_of_a_variant_runs_together_the_reference_first(collect):
    """One variant at a time (bounded memory): build, agreement, quality and speed of one variant, then the next."""
    code, out, err = collect("--variants", "onnx,torch-fp32,openvino")
    assert code == 0, err
    items = re.findall(r"::(test_\w+)(?:\[([^\]]+)\])?", out)
    batched = ("test_speed", "test_regression_speed")
    variants = [param.split("-", 1)[1] if name in batched else param or None for name, param in items]
    assert list(dict.fromkeys(variants)) == ["torch-fp32", None, "onnx", "openvino"]
    gated = [v for v in variants if v]
    assert gated == sorted(gated, key=["torch-fp32", "onnx", "openvino"].index)  # never interleaved
    assert items[variants.index(None)] == ("test_regression", "")  # the candidate vs its baseline: after the reference
    onnx = [name + ("[" + param.split("-", 1)[0] + "]" if name in batched else "")
            for (name, param), variant in zip(items, variants) if variant == "onnx"]
    assert onnx == ["test_variant_builds_and_scores", "test_agreement", "test_batch_invariance", "test_quality",
                    "test_speed[b1]", "test_speed[b32]", "test_regression_speed[b1]", "test_regression_speed[b32]"]


def test_collect_lists_every_id_for_the_reranker(collect, shared_reranker):
    code, out, err = collect("--candidate", str(shared_reranker))
    assert code == 0, err
    assert collected_ids(out) == DEFAULT_IDS


def test_report_header_says_what_reproduces_the_run(collect, shared_reranker):
    _, text, _ = collect("--candidate", str(shared_reranker), "--variants", "onnx-qint8-*", quiet=False)
    assert f"quantgate: candidate {shared_reranker}; kind auto" in text
    assert "thresholds" in text and "sha256" in text and "libraries torch 2.13.0" in text
    assert collected_ids(text) == SEED_IDS[8:12]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--variants", "onx-O2"], "Did you mean 'onnx-O2'"),
        (["--candidate", "/nonexistent/model"], "does not exist"),
        (["--gate-data", "/nonexistent/data"], "does not exist; pass a BEIR-format folder"),
        (["--gate-thresholds", str(ROOT / "pyproject.toml")], "unknown section"),
        (["--gate-artifact", "no-equals-sign"], "expected NAME=PATH"),
        (["--gate-artifact", "x=/nonexistent.onnx"], "does not exist"),
        (["--gate-batch-size", "0"], "expected a positive integer"),
        (["--gate-mutant", "m=noise:lots"], "takes a number"),
    ],
)
def test_bad_input_gets_one_clear_error_before_anything_runs(collect, args, message):
    code, out, err = collect(*args)
    assert code == pytest.ExitCode.USAGE_ERROR
    assert message in err, err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--candidate", "org/model-that-is-not-cached"], "Hugging Face Hub"),
        (["--gate-tasks", "SciFactt"], "Did you mean: 'SciFact'"),
    ],
)
def test_what_needs_resolving_stops_the_run_once_at_the_first_gate_test(args, message, tmp_path):
    """Hub ids and mteb task names are resolved lazily (the hub, mteb's registry): the first gate test
    that needs them stops the whole run with one line and exit code 4, not one failure per variant."""
    out = run_gate("-q", "--variants", "torch-fp32,onnx", "--gate-cache", str(tmp_path), *args,
                   "--gate-report", str(tmp_path / "r"), timeout=300)
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout[-2000:]
    assert out.stdout.count(message) == 1 and "Traceback" not in out.stdout, out.stdout[-2000:]
    assert "building" not in out.stdout and not (tmp_path / "r").exists()


def _imports_after(args: list[str]) -> set[str]:
    """The heavy libraries imported by an in-process pytest run with these arguments."""
    code = ("import sys, pytest\n"
            f"rc = pytest.main({args!r})\n"
            "heavy = ('torch', 'sentence_transformers', 'transformers', 'mteb', 'onnxruntime', 'openvino', "
            "'neural_compressor', 'sklearn')\n"
            "print('RC', int(rc), 'HEAVY', ','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    rc, heavy = re.search(r"RC (\d+) HEAVY (\S*)", out.stdout).groups()
    assert rc == "0", out.stdout[-2000:] + out.stderr[-2000:]
    return set(filter(None, heavy.split(",")))


def test_help_and_collection_load_no_model_and_no_data():
    assert _imports_after(["--help"]) == set()  # not even torch
    # collection imports torch at most (whether CUDA is there decides some skips), never a model library
    assert _imports_after(["gates/", "--collect-only", "-q"]) <= {"torch"}
    assert _imports_after(["tests/test_config.py", "-q"]) <= {"torch"}  # an unrelated run under the plugin


def test_an_artifact_is_gated_whatever_variants_selects(collect, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not a model yet")  # collection never opens it
    code, out, err = collect("--variants", "onnx-O1", "--gate-artifact", f"mine={model}")
    assert code == 0, err
    assert collected_ids(out) == ["onnx-O1", "mine"]


def test_mteb_task_by_name_offline_says_the_hub_is_unreachable_and_what_to_use(tmp_path):
    out = run_gate("-q", "--variants", "torch-fp32", "--gate-tasks", "SciFact",
                   "--gate-no-retrieval", "--gate-cache", str(tmp_path), "--gate-report", str(tmp_path / "r"),
                   path="gates/test_quality.py", timeout=600)
    assert out.returncode == 1
    assert "mteb task SciFact: cannot load its data from the Hugging Face Hub" in out.stdout
    assert "--gate-data with a local BEIR folder" in out.stdout
    verdict = json.loads((tmp_path / "r" / "verdict.json").read_text())
    assert verdict["data"] == [] and verdict["data_source"] == "--gate-tasks"  # no local data was looked for


def test_a_variant_this_machine_cannot_run_is_skipped_with_its_reason_before_any_work(pytester, native_libraries):
    """Decided at collection from the spec's requirements (onnx-O4 needs CUDA and ONNX Runtime's CUDA provider):
    every test of the variant is skipped with the reason, nothing is built."""
    from quantgate.core import machine

    if machine.has_cuda():
        pytest.skip("this machine has a CUDA GPU: onnx-O4 may run here")
    result = pytester.runpytest_inprocess("--pyargs", "quantgate.gates", "-rs", "--variants", "onnx-O4", "-k", "O4",
                                          "--gate-cache", str(pytester.path / "cache"), "--gate-report", "report",
                                          "--gate-embedding-formats", "none")
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) >= 4 and "passed" not in outcomes and "failed" not in outcomes, outcomes
    assert "onnx-O4 needs a CUDA GPU (none on this machine)" in result.stdout.str()
    assert not (pytester.path / "cache").exists() or not any((pytester.path / "cache").rglob("*.onnx"))


def test_a_thresholds_file_that_is_not_utf8_and_a_cache_that_is_a_file_are_one_line_each(collect, tmp_path):
    """A stray Latin-1 byte in thresholds.toml names the file, its line and the byte's offset; --gate-cache pointing
    at a regular file names the option; both before anything runs, exit 4, no traceback."""
    latin = tmp_path / "thresholds.toml"
    latin.write_bytes(b"[quality]\n# caf\xe9\nreranking_map_max_loss = 0.01\n")
    code, out, err = collect("--gate-thresholds", str(latin))
    assert code == pytest.ExitCode.USAGE_ERROR and "Traceback" not in err + out and "INTERNALERROR" not in err + out
    assert f"{latin}:2: not UTF-8 text (byte 0xe9 at offset 15); save the file as UTF-8" in err, err
    (tmp_path / "cache-file").write_text("not a folder")
    code, out, err = collect("--gate-cache", str(tmp_path / "cache-file"))
    assert code == pytest.ExitCode.USAGE_ERROR and "Traceback" not in err + out
    assert err.count("--gate-cache") == 1 and "is a file; pass a directory" in err, err
