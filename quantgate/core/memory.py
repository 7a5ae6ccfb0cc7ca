"""Memory: what the process holds, its peak per variant, what the machine has left, and the guard
that skips a variant which cannot fit instead of letting the kernel kill the run.

The run's peak is the kernel's high-water mark (VmHWM, or getrusage), never reset: resetting it through
/proc/self/clear_refs would also reset what `/usr/bin/time -v` reports as the run's maximum (it showed
1.05 GB for a run whose variants peaked at 2.97 GB). A variant's peak is that mark when the variant raised
it (exact), else the largest RSS sampled every SAMPLE_SECONDS while its tests ran (a short spike between
two samples is missed: 0.4 GB of an ONNX O2 build's was). Available memory is the smaller of what psutil
says the machine has free and what a cgroup limit (a container, a CI runner) leaves.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

MB = 2**20
GB = 2**30
# What a run holds besides models: the libraries (torch, sentence-transformers, mteb, ONNX Runtime,
# OpenVINO, NNCF, INC import to 0.67 GB here), data, scores and the Python heap. The bound.
BASE_BYTES = 2 * GB
WEIGHT_MULTIPLE = 4


def bound(fp32_weight_bytes: int) -> int:
    """The peak a full CPU matrix must stay within: 2 GB + 4 x the candidate's fp32 weights."""
    return BASE_BYTES + WEIGHT_MULTIPLE * fp32_weight_bytes


@dataclass(frozen=True)
class Estimate:
    """Bytes a variant adds to the process: while it is built (when not cached) and while loaded."""

    build: int
    load: int

    def needed(self, cached: bool) -> int:
        return self.load if cached else max(self.build, self.load)


def rss() -> int:
    return psutil.Process().memory_info().rss


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_peak() -> int:
    """The process's peak resident memory so far (the kernel's high-water mark)."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024


SAMPLE_SECONDS = 0.05  # a build's or a batch's memory lasts far longer; reading /proc costs ~20 us


class PeakSampler:
    """The peak resident memory between start() and stop(), sampled by a daemon thread."""

    def __init__(self) -> None:
        self._peak = self._mark = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PeakSampler:
        self.stop()
        self._mark = process_peak()
        self._peak, self._stop = rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="quantgate-memory", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(SAMPLE_SECONDS):
            self._peak = max(self._peak, process.memory_info().rss)

    def stop(self) -> int:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        mark = process_peak()
        self._peak = mark if mark > self._mark else max(self._peak, rss())  # a new high: the kernel's exact mark
        return self._peak

    @property
    def peak(self) -> int:
        return max(self._peak, rss())


def _cgroup_room() -> int | None:
    """Bytes a cgroup limit leaves this process's group (v2, then v1), or None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None


def available() -> int:
    room = _cgroup_room()
    free = psutil.virtual_memory().available
    return free if room is None else min(free, room)


def release(settled: bool = False) -> None:
    """Collect what the dropped model left (reference cycles) and hand freed heap pages back to the
    system: without malloc_trim, glibc keeps them and the next variant's peak starts higher.

    `settled`: no variant is loaded any more, so what survives this collection (modules, the run's state) lives until
    the run ends: it is frozen out of every later collection (`gc.freeze`), which then scans only what came after.
    With torch, transformers, mteb and OpenVINO imported, a full collection scans about 700,000 objects in 0.34 s on
    a 2-core EPYC, and the default run releases 17 variants."""
    gc.collect()
    if settled:
        gc.freeze()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def guard(variant: str, estimate: Estimate, cached: bool, limit: int | None) -> str | None:
    """Why `variant` would not fit (a skip reason that says what to do), or None.

    `limit` is --gate-memory-limit (bytes the whole process may use); without it, what the machine
    (or its cgroup) has available now."""
    needed = estimate.needed(cached)
    now = rss()
    room = (limit - now) if limit is not None else available()
    if needed <= room:
        return None
    where = f"--gate-memory-limit {limit / GB:.2f} GB" if limit is not None else "what this machine has available"
    step = "its load" if cached else "its build and load"
    return (f"{variant} skipped by the memory guard: {step} needs about {needed / GB:.2f} GB more, and "
            f"{where} leaves {max(room, 0) / GB:.2f} GB (the process holds {now / GB:.2f} GB); run it on a larger "
            "machine or alone (--variants)")
