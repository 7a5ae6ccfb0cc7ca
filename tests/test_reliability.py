"""Injected regressions: each must fail the gate (agreement and/or quality) on both kinds;
one below the limits must pass. Prints the catch count."""

import os
import re

import pytest

from quantgate.backends.mutant import parse
from quantgate.session.core import GateSession, GateSettings
from tests.conftest import ROOT

INJECTED = {
    "noise": "noise:0.5",
    "no-activation": "activation:identity",
    "double-activation": "activation:double",
    "max-length-32": "max_length:32",
    "cased-tokenizer": "tokenizer:cased",
    "naive-int8": "naive_int8:1",
    "negated": "negate:1",
}
BELOW_LIMITS = {"tiny-noise": "noise:0.001"}
RERANKER_ONLY = {"no-activation", "double-activation"}


def _gate(cache, candidate, data, top_k):
    gate = GateSession(GateSettings(candidate=str(candidate) if candidate else None, cache_dir=str(cache),
                                    data=(str(data),), thresholds=str(ROOT / "thresholds.toml"), max_queries=10,
                                    top_k=top_k, retrieval=False, device="cpu"))
    for name, body in {**INJECTED, **BELOW_LIMITS}.items():
        gate.context.registry.register(parse(f"{name}={body}"))
    return gate


@pytest.fixture(scope="module")
def gates(shared_reranker, scifact, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {"reranker": _gate(cache, shared_reranker, scifact, 10), "embedder": _gate(cache, None, scifact, 10)}


def _failures(gate, name):
    spec = gate.context.registry.variants[name]
    return gate.evaluator.agreement_check(spec)[1] + gate.evaluator.quality_check(spec)[2]


@pytest.mark.parametrize("kind", ["reranker", "embedder"])
def test_every_injected_regression_is_caught_and_tiny_noise_is_not(gates, kind, record_property):
    gate = gates[kind]
    names = [n for n in INJECTED if kind == "reranker" or n not in RERANKER_ONLY]
    missed = [n for n in names if not _failures(gate, n)]
    false_alarms = [n for n in BELOW_LIMITS if _failures(gate, n)]
    record_property("caught", f"{len(names) - len(missed)}/{len(names)}")
    print(f"\n{kind}: caught {len(names) - len(missed)}/{len(names)}; "
          f"false alarms {len(false_alarms)}/{len(BELOW_LIMITS)}")
    assert missed == [], f"{kind}: the gate let these regressions through: {missed}"
    assert false_alarms == [], f"{kind}: false alarm on {false_alarms}"


# -- stability: the same verdict, run after run ------------------------------------------

STABLE = ("torch-fp32", "onnx", "openvino", "openvino-qint8")


def _verdict_of(gate) -> dict:
    verdict = {}
    for spec in gate.context.selected:
        results, failures, _ = gate.evaluator.agreement_check(spec)
        _, losses, quality_failures = gate.evaluator.quality_check(spec)
        verdict[spec.id] = {
            "passed": not failures and not quality_failures and all(l.decision == "pass" for l in losses),
            "agreement": [r.metrics for r in results],
            "losses": [(l.metric, l.variant, l.loss, l.low, l.high, l.decision) for l in losses],
        }
    return verdict


def test_clean_variants_give_the_same_verdict_in_five_runs(shared_reranker, scifact, tmp_path):
    """Five independent sessions (fresh scores, fresh decisions) over one cache: identical verdicts,
    the fp32 variants pass every time. The second run rebuilds every artifact (static int8
    calibrates again): the verdict does not move."""
    runs = []
    for run in range(5):
        gate = GateSession(GateSettings(candidate=str(shared_reranker), cache_dir=str(tmp_path / "cache"),
                                        data=(str(scifact),), thresholds=str(ROOT / "thresholds.toml"),
                                        max_queries=10, top_k=10, device="cpu", variants=STABLE, rebuild=run == 1,
                                        calibration_samples=64))
        runs.append(_verdict_of(gate))
    flaky = [vid for vid in STABLE if any(r[vid] != runs[0][vid] for r in runs[1:])]
    assert flaky == [], f"verdicts changed between runs for {flaky}"
    assert all(runs[0][vid]["passed"] for vid in ("torch-fp32", "onnx", "openvino")), runs[0]


# -- security: no pickle is ever unpickled when artifacts are loaded ----------------------

def _is_pt2_archive(path) -> bool:
    """torch.export's archive (INC's `.pt`): tensors as raw bytes described by JSON, none pickled."""
    import json
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        configs = [n for n in names if n.endswith("model_weights_config.json")]
        if not any(n.endswith("/archive_format") for n in names) or not configs:
            return False
        entries = json.loads(archive.read(configs[0]))["config"].values()
        return not any(entry.get("use_pickle") for entry in entries)


def test_loading_every_backend_unpickles_nothing(tiny_reranker, scifact, tmp_path, monkeypatch):
    """Artifacts are safetensors, ONNX, OpenVINO IR and INC's torch.export archive (raw tensor
    bytes + JSON): loading them with pickle and torch.load disabled must work."""
    import pickle

    import torch

    gate = GateSession(GateSettings(candidate=str(tiny_reranker), cache_dir=str(tmp_path / "cache"),
                                    data=(str(scifact),), thresholds=str(ROOT / "thresholds.toml"), max_queries=2,
                                    top_k=5, device="cpu", variants=("torch-fp32", "onnx", "openvino", "inc-int8")))
    for spec in gate.context.selected:
        files = gate.factory.artifact(spec).manifest["files"]
        artifact = gate.factory.artifact(spec).path
        ir_weights = {f.removesuffix(".xml") + ".bin" for f in files if f.endswith(".xml")}  # OpenVINO: raw bytes
        suspect = [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))
                   and f not in ir_weights and not _is_pt2_archive(artifact / f)]
        assert suspect == [], f"{spec.id} keeps files that may hold pickles: {suspect}"

    def refuse(*_args, **_kwargs):
        raise AssertionError("a pickle was about to be loaded")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    for spec in gate.context.selected:
        scores = gate.store.scores(spec, gate.context.evaluation_sets()[0])
        assert len(scores.keys) > 0


# -- two gate processes at once on one cache, one report dir, one history --------------

def test_two_gate_runs_at_once_share_the_cache_and_corrupt_nothing(tmp_path):
    import json
    import subprocess
    import sys

    from quantgate.core.cache import verify
    from quantgate.speed.bench import load_history

    cache, report, storage = tmp_path / "cache", tmp_path / "report", tmp_path / "benchmarks"
    thresholds = tmp_path / "thresholds.toml"  # 40 queries decide nothing: here that is not a failure
    thresholds.write_text((ROOT / "thresholds.toml").read_text().replace('inconclusive = "fail"',
                                                                         'inconclusive = "pass"'))
    args = [sys.executable, "-m", "pytest", "gates/", "-p", "no:cacheprovider", "-q", "--variants",
            "torch-fp32,onnx,onnx-qint8-avx2", "--gate-cache", str(cache), "--gate-report", str(report),
            "--gate-thresholds", str(thresholds), "--gate-speed-rounds", "2", "--benchmark-autosave",
            f"--benchmark-storage=file://{storage}",
            # what is shared is the cache, the report and the history: 40 queries, 10 latency inputs and no stored
            # formats go through the same writes as the whole embedded set (109 s of CI at its 336 queries)
            "--gate-max-queries", "40", "--gate-latency-inputs", "10", "--gate-embedding-formats", "none"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    built = sum(int(m) for out in outputs for m in re.findall(r"artifacts built this run: (\d+)", out))
    artifacts = [p for p in cache.iterdir() if (p / "quantgate-artifact.json").is_file()]
    # each built once, by one of them (onnx-qint8-avx2 is built from onnx's export: one waits for the other's)
    assert built == len(artifacts) == 3, (built, [p.name for p in artifacts])
    assert all(verify(p)[0] is not None for p in artifacts)
    assert not [p for p in cache.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["complete"]
    assert set(verdict["variants"]) == {"torch-fp32", "onnx", "onnx-qint8-avx2"}
    saved = sorted(storage.rglob("[0-9][0-9][0-9][0-9]_*.json"))
    assert len(saved) == 2 and all(json.loads(p.read_text())["benchmarks"] for p in saved), saved
    runs = {p.source for p in load_history(storage)}
    assert len(runs) == 2


# -- tokens: never in any output, even with debug logging, while a hub download fails ----

def test_hub_token_never_appears_in_output_of_a_failing_download(tmp_path):
    import http.server
    import subprocess
    import sys
    import threading

    token = "hf_ZqX9SECRETk3yWv0123456789abcdefgh"
    seen = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("authorization", ""))
            body = b'{"error": "Repository Not Found"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_TOKEN=token, HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
               HF_HOME=str(tmp_path / "hf"), HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5")
    try:
        # the first gate test resolves the candidate (start-up only checks that it looks like a hub id)
        out = subprocess.run([sys.executable, "-m", "pytest", "gates/test_build.py", "-p", "no:cacheprovider",
                              "--candidate", "org/private-model", "--variants", "torch-fp32", "--gate-report",
                              str(tmp_path / "r"), "-o", "log_cli=true", "--log-cli-level=DEBUG"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert any(token in header for header in seen), "the token was never sent: this test proves nothing"
    assert out.returncode == 4 and "cannot download 'org/private-model'" in out.stdout, out.stdout[-2000:]
    assert token not in out.stdout + out.stderr
    assert token[3:12] not in out.stdout + out.stderr
