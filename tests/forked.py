"""Gate runs of the tests, each forked from one process that imported the gate's libraries once.

A gate run in a fresh interpreter spends about 16 s importing torch, transformers, sentence-transformers, mteb and
ONNX Runtime before it does anything (16.4 s on the AVX2-only 2-core AMD EPYC: `python -c "import torch,
transformers, sentence_transformers, mteb, optimum.onnxruntime, onnxruntime"`), and the suite starts dozens of runs.
A run forked from a process that has imported them (and run nothing: no thread pool of theirs has started work) is
still a process of its own, with its own state, exit code, output and environment, as `python -m pytest` gives it.
OpenVINO is left out: importing it starts a Python thread pool (its telemetry sender), which a forked child would
not have.

Runs that must be separate interpreters (killed mid-run, two at once, other import-time environment) use subprocess.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PRELOADED = ("torch", "transformers", "sentence_transformers", "mteb", "onnxruntime", "optimum.onnxruntime")
# environment the preloaded libraries read when imported: a run whose values differ from the zygote's gets its own
# interpreter
IMPORT_TIME = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "TOKENIZERS_", "ORT_")


def _serve() -> None:  # the zygote: one request a line on stdin, answers on stdout
    import importlib

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to stderr, never into the answers
    for name in PRELOADED:
        importlib.import_module(name)
    import pytest  # noqa: F401 -- the runs' entry point, imported once too

    answers.write("ready\n")
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(answers.fileno())
            _child(request)
        answers.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")


def _child(request: dict) -> None:
    code = 1
    try:
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, request["out"], os.O_WRONLY | os.O_TRUNC),
                               (2, request["err"], os.O_WRONLY | os.O_TRUNC)):
            opened = os.open(path, mode)
            os.dup2(opened, fd)
            os.close(opened)
        sys.path.insert(0, request["cwd"])  # as `python -m pytest` does
        sys.argv = ["pytest", *request["args"]]
        import pytest

        code = int(pytest.main(request["args"]))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # the child reports it: it never returns to the zygote's loop
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Zygote:
    """The forking process, started on the first run and stopped when the test session ends."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process: subprocess.Popen | None = None
        self.pending = b""
        self.lock = threading.Lock()  # one run at a time: the requests and answers share one pipe

    def _start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, "-c", "from tests.forked import _serve; _serve()"],
                                            cwd=Path(__file__).parent.parent, env=self.env, text=True,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1)
            self.pending = b""
            assert self._answer(300) == "ready"
        return self.process

    def _answer(self, timeout: float) -> str | None:
        """The zygote's next line, or None after `timeout` seconds (read unbuffered: two lines can come at once)."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self.pending:
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("the gate runs' zygote exited")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode().strip()

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        def read_at_import(values: dict[str, str]) -> dict[str, str]:
            return {k: v for k, v in values.items() if k.startswith(IMPORT_TIME)}

        if read_at_import(env) != read_at_import(self.env):
            return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        with self.lock:
            return self._forked(args, cwd, env, timeout)

    def _forked(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        process = self._start()
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            out.touch()
            err.touch()
            request = {"args": args, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err)}
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            pid = json.loads(self._answer(60))["pid"]
            answer = self._answer(timeout)
            if answer is None:
                os.killpg(pid, signal.SIGKILL)
                self._answer(60)
                raise subprocess.TimeoutExpired(["pytest", *args], timeout, out.read_text(), err.read_text())
            code = json.loads(answer)["code"]
            return subprocess.CompletedProcess(["pytest", *args], code, out.read_text(), err.read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(60)


_zygote: Zygote | None = None


def run_gate(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`python -m pytest ARGS` in `cwd` with `env`, forked from the session's zygote (started on first use with the
    environment of that run: what the preloaded libraries read when imported)."""
    global _zygote
    if _zygote is None:
        _zygote = Zygote(env)
    return _zygote.run(args, cwd, env, timeout)


def stop() -> None:
    if _zygote is not None:
        _zygote.stop()
