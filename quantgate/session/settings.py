"""What the user asked for (GateSettings) and the option values that need more than a type to check:
the shard of the variant matrix, an artifact built elsewhere, the device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quantgate.backends.external import source_kind
from quantgate.core import machine
from quantgate.core.candidate import file_sha256, hash_dir
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation.data import EMBEDDED_SOURCE, data_folders
from quantgate.variants.registry import REFERENCE_ID, VariantSpec

# The speed gate's settings when --gate-speed-rounds / --gate-latency-inputs are not given. On the embedded
# demonstration set the gate measures lighter, so the first run of a new user ends in minutes: the b1 and b32 speed
# tests took 64 s of a 125 s warm default run at 200 inputs and 5 rounds (2-core AMD EPYC, docs/measurements.md
# "The default run"). The verdict records how many inputs and rounds each figure came from.
SPEED_ROUNDS, LATENCY_INPUTS = 5, 200
DEMO_SPEED_ROUNDS, DEMO_LATENCY_INPUTS = 3, 50


def speed_defaults(data: tuple[str, ...], tasks: tuple[str, ...]) -> tuple[int, int]:
    """(throughput rounds, batch-1 latency inputs) for a run on these data options, when not given."""
    if data_folders(data, tasks)[1] == EMBEDDED_SOURCE:
        return DEMO_SPEED_ROUNDS, DEMO_LATENCY_INPUTS
    return SPEED_ROUNDS, LATENCY_INPUTS


REPORT_DIR = "gate-report"  # --gate-report's default: the CLI's report, publish, history and merge read it too

@dataclass(frozen=True)
class GateSettings:
    """What the user asked for; GateContext.from_settings checks it and resolves what it names on first use."""

    candidate: str | None = None
    kind: str = "auto"
    variants: tuple[str, ...] = ()
    cache_dir: str | None = None
    rebuild: bool = False
    data: tuple[str, ...] = ()
    calibration_data: tuple[str, ...] = ()  # folders whose train split calibrates static int8 (default: data)
    validation_data: str | None = None  # accuracy control: a folder of validation queries (default: held-out train)
    artifacts: tuple[tuple[str, str], ...] = ()  # (name, path) from --gate-artifact
    endpoints: tuple[tuple[str, str], ...] = ()  # (name, url) from --gate-endpoint: a running server, gated as served
    mutants: tuple[str, ...] = ()  # test-only injected regressions, NAME=key:value,... (--gate-mutant)
    thresholds: str | None = "thresholds.toml"
    device: str = "auto"
    trust_remote_code: bool = False
    batch_size: int = 32
    report_dir: str = REPORT_DIR
    calibration_samples: int | None = None  # None: thresholds.toml [calibration] samples
    max_queries: int | None = None  # quick runs: score only the first N test queries of each set
    top_k: int | None = None  # quick runs: only the first K candidates of each query
    threads: int | None = None  # one thread budget for every backend (default: all cores)
    speed_batches: tuple[int, ...] = (1, 32)  # latency (1) and throughput batch sizes
    speed_rounds: int = SPEED_ROUNDS
    speed_compare: bool = False  # fail on a regression against this machine's history
    benchmark_storage: str = ".benchmarks"
    tasks: tuple[str, ...] = ()  # mteb task names, loaded from the hub (--gate-tasks)
    retrieval: bool = True  # embedders: also full-corpus retrieval (one more encoding pass per variant)
    shard: tuple[int, int] | None = None  # (I, N): run shard I of N of the selected variants
    dtype: str | None = None  # "auto": also gate the model in the dtype its config names (torch-auto)
    memory_budget_mb: float | None = None  # auto batch: the most memory a batch may take (default 80% of free GPU)
    memory_limit_gb: float | None = None  # the memory guard's limit for the process (default: what is available)
    latency_inputs: int = LATENCY_INPUTS  # batch-1 latency: this many different real inputs, one per timed round
    resume: bool = True  # take finished variants from an incomplete verdict with the same artifact and inputs
    baseline: str | None = None  # the model in production: a model dir, a hub id or a verdict.json (--gate-baseline)
    history_dir: str | None = None  # where complete verdicts are kept (default: <benchmark storage>/quantgate-verdicts)
    worker_id: str | None = None  # pytest-xdist worker ("gw0"): writes its own partial verdict
    time_budget_min: float | None = None  # the time guard's budget for the run (--gate-time-budget)
    embedding_formats: tuple[str, ...] | None = None  # stored-format ids (None: formats.DEFAULT_FORMATS)
    embedding_formats_for: str = "passed"  # "passed": the reference and the variants that passed; "all"
    prompts: tuple[tuple[str, str], ...] | None = None  # --gate-prompts: (role, prompt); () is none; None: not given
    embedding_ranges: str | None = None  # a .npy of (2, dimensions) ranges for int8/uint8 instead of calibration


def shard(specs: list[VariantSpec], index: int, count: int) -> tuple[list[VariantSpec], list[str]]:
    """Shard `index` (1-based) of `count`: round-robin over the selection's order, so every run
    of the same selection splits it the same way. The reference runs in every shard (losses and
    speedups are measured against it in the same run); the shard that owns it reports it.
    Returns (what runs here, the ids this shard owns)."""
    owned = [s for i, s in enumerate(specs) if i % count == index - 1]
    reference = [s for s in specs if s.id == REFERENCE_ID and s not in owned]
    return reference + owned, [s.id for s in owned]


def external_spec(name: str, path: str) -> VariantSpec:
    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise QuantgateUsageError(f"--gate-artifact {name}={path}: {path} does not exist")
    kind = source_kind(source)
    digest = hash_dir(source) if source.is_dir() else file_sha256(source)
    if kind == "openvino":  # the weights are the .bin: a replaced .bin is another artifact, never the cached one
        digest = f"{digest}:{file_sha256(source.with_suffix('.bin'))}"
    return VariantSpec(
        id=name,
        family="external",
        precision="unknown",
        description=f"artifact built elsewhere ({kind}): {source}",
        options=(("path", str(source)), ("sha256", digest)),
    )


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if machine.has_cuda() else "cpu"
    if device == "cuda" and not machine.has_cuda():
        raise QuantgateUsageError("--gate-device cuda: no CUDA GPU is visible on this machine; use --gate-device cpu")
    return device
