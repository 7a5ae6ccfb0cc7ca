"""A served endpoint as a variant: a real HTTP server on 127.0.0.1, started and stopped here, gated against the
reference on the embedded data; once serving the model right (pass) and once with a planted pooling bug (fail)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from tests.conftest import ROOT
from tests.test_plugin import run_gate

STARTUP_S = 120  # the server loads the model before it prints its port


@contextmanager
def serving(model, pooling: str):
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "endpoint_server.py"), str(model),
                             "--pooling", pooling], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline, line = time.monotonic() + STARTUP_S, ""
        while time.monotonic() < deadline and not line.startswith("PORT "):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert line.startswith("PORT "), f"the test server did not start (exit {proc.poll()})"
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_endpoint_is_gated_as_served_and_a_pooling_bug_fails(embedder_path, tmp_path):
    with serving(embedder_path, "model") as good, serving(embedder_path, "cls") as bad:
        out = run_gate("-q", "-k", "not speed and not batch", "--variants", "torch-fp32",
                       "--gate-endpoint", f"served={good}", "--gate-endpoint", f"pooling-bug={bad}",
                       "--gate-embedding-formats", "none", "--gate-cache", str(tmp_path / "cache"),
                       "--gate-report", str(tmp_path / "report"), timeout=900)
    verdict = json.loads((tmp_path / "report" / "verdict.json").read_text())
    assert verdict["complete"], out.stdout[-3000:]
    served, bug = verdict["variants"]["served"], verdict["variants"]["pooling-bug"]
    assert served["decision"] == "pass", served["failures"]
    assert served["runtime"]["runtime"] == "endpoint" and served["runtime"]["served"] == {"model": "test-server/model"}
    assert bug["decision"] == "fail" and any("cosine_min" in f for f in bug["failures"]), bug["failures"]
    assert out.returncode == 1


def test_an_unreachable_endpoint_is_one_line(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on: bound, then closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = run_gate("-q", "-k", "build", "--variants", "torch-fp32", "--gate-endpoint", f"down=http://127.0.0.1:{port}",
                   "--gate-cache", str(tmp_path / "cache"), "--gate-report", str(tmp_path / "report"), timeout=600)
    assert out.returncode == 1
    said = [line for line in out.stdout.splitlines() if "cannot connect" in line]
    assert said and "is the server running?" in said[0] and "Traceback" not in out.stdout, out.stdout[-3000:]


@pytest.mark.parametrize("value", ["x=localhost:8080", "x=ftp://127.0.0.1"])
def test_an_endpoint_without_a_scheme_is_refused_before_anything_runs(value, tmp_path):
    out = run_gate("-q", "--collect-only", "--gate-endpoint", value, "--gate-cache", str(tmp_path), timeout=300)
    assert out.returncode == pytest.ExitCode.USAGE_ERROR and "expected NAME=http://HOST:PORT" in out.stdout + out.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def infinity(engine: str, model, port: int):
    """Infinity (infinity-emb) serving `model` on 127.0.0.1:`port`, up once /models answers (polled, bounded)."""
    import os
    import urllib.request

    proc = subprocess.Popen([engine, "v2", "--model-id", str(model), "--host", "127.0.0.1", "--port", str(port),
                             "--engine", "torch", "--device", "cpu", "--no-bettertransformer"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        for _ in range(STARTUP_S):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, f"infinity_emb exited with {proc.returncode}"
                time.sleep(1)
        else:
            pytest.fail(f"infinity_emb did not answer within {STARTUP_S} s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.slow
def test_a_real_serving_engine_passes_the_model_and_fails_a_pooling_bug(embedder_path, tmp_path):
    """Infinity serving the embedded default passes; serving a copy whose Pooling config says CLS (the engine pools
    as the files say, as TEI and vLLM do) fails agreement. Infinity pins numpy < 2 and sentence-transformers < 4, so
    it lives in a virtual environment of its own (docs/measurements.md: 3 min and 5.9 GB to install)."""
    import os
    import shutil

    engine = os.environ.get("QUANTGATE_INFINITY")
    if not engine:
        pytest.skip("needs infinity_emb in a virtual environment of its own: QUANTGATE_INFINITY=/path/to/infinity_emb")
    cls = tmp_path / "cls-pooling"
    shutil.copytree(embedder_path, cls)
    pooling = cls / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    pooling.write_text(json.dumps(config))
    with infinity(engine, embedder_path, _free_port()) as good, infinity(engine, cls, _free_port()) as bad:
        out = run_gate("-q", "-k", "not speed and not batch", "--variants", "torch-fp32",
                       "--gate-endpoint", f"infinity={good}", "--gate-endpoint", f"infinity-cls={bad}",
                       "--gate-embedding-formats", "none", "--gate-cache", str(tmp_path / "cache"),
                       "--gate-report", str(tmp_path / "report"), timeout=900)
    verdict = json.loads((tmp_path / "report" / "verdict.json").read_text())
    assert verdict["variants"]["infinity"]["decision"] == "pass", out.stdout[-3000:]
    assert verdict["variants"]["infinity-cls"]["decision"] == "fail"


def test_a_rerank_endpoint_scores_each_querys_candidates_in_their_order():
    """TEI's /rerank answer (best first, by index) is put back in the pairs' order, one request per query's run of
    candidates; an in-process server on 127.0.0.1, stopped at the end."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from quantgate.backends.endpoint import Reranker

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((body["query"], body["texts"]))
            ranked = sorted(enumerate(body["texts"]), key=lambda item: -len(item[1]))
            data = json.dumps([{"index": i, "score": float(len(text))} for i, text in ranked]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        scores = Reranker(f"http://127.0.0.1:{server.server_address[1]}", {}).predict(
            [("q", "a"), ("q", "bbb"), ("p", "cc"), ("q", "dddd")])
    finally:
        server.shutdown()
    assert scores.tolist() == [1.0, 3.0, 2.0, 4.0]
    assert seen == [("q", ["a", "bbb"]), ("p", ["cc"]), ("q", ["dddd"])]
