"""Speed: inputs and calls for pytest-benchmark, run history from its storage, regression rule.

Timing itself is pytest-benchmark's; this module only prepares the calls, summarises the
numbers into `extra_info`, reads the saved runs back (pytest-benchmark's own JSON storage,
`.benchmarks/<machine>/NNNN_*.json`) and applies the noise-aware regression rule.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantgate.evaluation.data import EvalSet


def speed_items(dataset: EvalSet, kind: str, n: int) -> list:
    """Real inputs from the evaluation data: query-passage pairs, or passages for embedders."""
    pairs = dataset.reranking_pairs()
    if not pairs:
        raise ValueError(f"{dataset.name} has no candidate pairs to time")
    items = [(q, p) for _, _, q, p in pairs] if kind == "reranker" else [p for _, _, _, p in pairs]
    return [items[i % len(items)] for i in range(n)]


def latency_items(dataset: EvalSet, kind: str, n: int, seed: int) -> list:
    """`n` different real inputs for batch-1 latency, a seeded sample over every query of the set: pairs
    for rerankers; for embedders queries and passages (what is encoded one at a time at search time and
    at indexing). Fewer when the set has fewer."""
    import random

    pairs = dataset.reranking_pairs()
    if not pairs:
        raise ValueError(f"{dataset.name} has no candidate pairs to time")
    if kind == "reranker":
        pool = list(dict.fromkeys((q, p) for _, _, q, p in pairs))
    else:
        pool = list(dict.fromkeys([q for _, _, q, _ in pairs] + [p for _, _, _, p in pairs]))
    return random.Random(seed).sample(pool, min(n, len(pool)))


def one_at_a_time(model, kind: str, items: list) -> tuple[Callable[[Any], Any], Callable[[], tuple]]:
    """pytest-benchmark's (target, setup) for batch-1 latency: each round gets the next input."""
    upcoming = itertools.cycle(items)
    if kind == "reranker":
        def target(item):
            return model.predict([item], batch_size=1, show_progress_bar=False)
    else:
        def target(item):
            return model.encode([item], batch_size=1, show_progress_bar=False)
    return target, lambda: ((next(upcoming),), {})


def percentiles(rounds: list[float]) -> dict[str, Any]:
    """p50/p90/p99 of per-input latencies (pytest-benchmark's own stats stop at the quartiles)."""
    import numpy as np

    p50, p90, p99 = np.percentile(np.asarray(rounds) * 1000, [50, 90, 99])
    return {"latency_inputs": len(rounds), "latency_ms_p50": round(float(p50), 3),
            "latency_ms_p90": round(float(p90), 3), "latency_ms_p99": round(float(p99), 3)}


def make_call(model, kind: str, items: list, batch_size: int) -> Callable[[], Any]:
    """What the user's code would call: predict() or encode(), one batch of `batch_size` items."""
    if kind == "reranker":
        return lambda: model.predict(items, batch_size=batch_size, show_progress_bar=False)
    return lambda: model.encode(items, batch_size=batch_size, show_progress_bar=False)


def model_only(context, factory, spec, model, phases) -> tuple[float | None, dict | None]:
    """On CUDA: model-only seconds from back-to-back forwards and, for torch variants, the raw transformers
    forward of the same files in the variant's dtype beside it (G-P3: the gate's within 10%). On a CPU the
    forward phase is the model-only figure: (None, None)."""
    if context.device != "cuda" or phases.features is None:
        return None, None
    import torch

    from quantgate.speed.phases import back_to_back, raw_model

    dtype = factory.runtime.get(spec.id, {}).get("dtype") if spec.family == "torch" else None
    candidate = context.candidate
    raw = raw_model(model, candidate.kind, dtype, context.device, candidate.trust_remote_code) if dtype else None
    try:
        return back_to_back(phases, context.settings.speed_rounds, raw)
    finally:
        del raw
        torch.cuda.empty_cache()


BATCH_CANDIDATES = (8, 16, 32, 64, 128, 256, 512, 1024)


def memory_budget(device: str, budget_mb: float | None) -> int | None:
    """Bytes a batch may take: --gate-memory-budget, else 80% of the GPU's free memory; None on CPU."""
    if budget_mb is not None:
        return int(budget_mb * 2**20)
    if device != "cuda":
        return None
    import torch

    free, _total = torch.cuda.mem_get_info()
    return int(free * 0.8)


def reset_gpu_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_mb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def find_batch(model, kind: str, dataset: EvalSet, device: str, budget: int | None,
               candidates: tuple[int, ...] = BATCH_CANDIDATES) -> tuple[int, list[dict]]:
    """The batch with the best throughput among `candidates` that stays within `budget` bytes of
    GPU memory. Stops at the first out-of-memory (caught, memory released: the run goes on), at
    the first batch over budget, or on the CPU when throughput falls 10% below the best. A quick
    search; the chosen batch is then measured by pytest-benchmark."""
    import time

    trials: list[dict] = []
    best: tuple[int, float] | None = None
    for batch in candidates:
        call = make_call(model, kind, speed_items(dataset, kind, batch), batch)
        reset_gpu_peak(device)
        try:
            call()  # warm-up: kernels, allocator
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                call()
                timings.append(time.perf_counter() - started)
            seconds = statistics.median(timings)
        except Exception as err:
            if not is_out_of_memory(err):
                raise
            if device == "cuda":
                import torch

                torch.cuda.empty_cache()
            trials.append({"batch": batch, "oom": True})
            break
        peak = gpu_peak_mb(device)
        over = budget is not None and peak is not None and peak * 2**20 > budget
        trials.append({"batch": batch, "items_per_s": round(batch / seconds, 1), "peak_mb": peak, "over_budget": over})
        if over:
            break
        if best is None or batch / seconds > best[1]:
            best = (batch, batch / seconds)
        elif device != "cuda" and batch / seconds < 0.9 * best[1]:
            break  # CPU: past the best, larger batches only pad more (a GPU goes on until memory says no)
    return (best[0] if best else candidates[0]), trials


@dataclass(frozen=True)
class HistoryPoint:
    when: str
    source: str
    variant: str
    batch: int
    items_per_s: float
    median_s: float
    machine: str
    model: str = ""  # the gated model's content hash ("" in runs saved before it was recorded)


def load_history(storage: str | Path, machine: str | None = None) -> list[HistoryPoint]:
    """Every quantgate speed benchmark saved in pytest-benchmark's storage, oldest first."""
    from pytest_benchmark.logger import Logger
    from pytest_benchmark.storage.file import FileStorage

    path = Path(str(storage).removeprefix("file://"))
    if not path.is_dir():
        return []
    store = FileStorage(path, logger=Logger(Logger.QUIET, config=None), default_machine_id=None)
    points = []
    for relpath, data in store.load("*/[0-9][0-9][0-9][0-9]_"):
        info = data.get("machine_info", {})
        cpu = (info.get("cpu") or {}).get("brand_raw", "")
        host = f"{info.get('node', '')}/{cpu}"
        for bench in data.get("benchmarks", []):
            extra = bench.get("extra_info") or {}
            if "variant" not in extra or "batch_size" not in extra:
                continue
            median = bench["stats"]["median"]
            points.append(HistoryPoint(data.get("datetime", ""), str(relpath), extra["variant"],
                                       int(extra["batch_size"]),
                                       extra["batch_size"] / median, median, extra.get("machine", host),
                                       extra.get("candidate_sha256", "")))
    points.sort(key=lambda p: p.when)
    return [p for p in points if machine is None or p.machine == machine]


@dataclass(frozen=True)
class SlowerThanHistory:
    variant: str
    batch: int
    current: float
    baseline: float
    tolerance: float
    runs: int

    def message(self) -> str:
        return (f"{self.variant} batch {self.batch}: {self.current:.1f} items/s is below the median of the last "
                f"{self.runs} runs on this machine, {self.baseline:.1f} items/s, by more than the tolerance "
                f"{self.tolerance:.1f} items/s")


# The rule is noise-aware only from two runs on: the MAD of one run is 0, and one run says nothing of this
# machine's spread. Measured: the same torch-fp32 at batch 1 ran 28.0 then 23.5 items/s (-16%) in two gate
# runs minutes apart on a 2-core CI VM (tests/test_regression.py), past the 10% a single run would have allowed.
MIN_RUNS = 2


def regression(history: list[HistoryPoint], variant: str, batch: int, current: float, *, runs: int,
               pct: float, spread_multiple: float) -> SlowerThanHistory | None:
    """Slower than the median of the last `runs` runs by more than max(pct%, k x MAD)? Not decided (None)
    with fewer than MIN_RUNS runs."""
    past = [p.items_per_s for p in history if p.variant == variant and p.batch == batch][-runs:]
    if len(past) < MIN_RUNS:
        return None
    baseline = statistics.median(past)
    mad = statistics.median(abs(x - baseline) for x in past)
    tolerance = max(baseline * pct / 100.0, spread_multiple * mad)
    if current < baseline - tolerance:
        return SlowerThanHistory(variant, batch, current, baseline, tolerance, len(past))
    return None


def machine_key() -> str:
    """Which machine a run belongs to: host name and CPU, as pytest-benchmark records them."""
    import platform

    from quantgate.core.machine import cpu_summary

    return f"{platform.node()}/{cpu_summary()}"
