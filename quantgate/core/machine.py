"""Facts about this machine and its libraries: what a run needs to be reproduced."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from importlib import metadata

LIBRARIES = ("torch", "transformers", "sentence-transformers", "mteb")  # the gate's own; each backend names its own


@lru_cache(maxsize=4)
def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """name -> installed version of each library in `names` that is installed (quantgate.backends.libraries():
    the gate's and every family's)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_summary() -> str:
    flags = cpu_flags()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile") if f in flags]
    return f"{platform.machine()}, {os.cpu_count()} cores, {'/'.join(simd) or 'no AVX2'}"


@lru_cache(maxsize=1)
def has_cuda() -> bool:
    """True when torch sees a CUDA device. Imports torch: call it lazily."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


NATIVE_FLAGS = {"fp16": ("avx512_fp16", "amx_fp16"), "bf16": ("avx512_bf16", "amx_bf16")}  # CPU flags of native kernels


def capability_missing(requirement: str) -> str | None:
    """Why this machine lacks `requirement` (cuda, fp16, bf16, cpu:FLAG), or None when it has it. A requirement only
    one backend knows is answered by its module (`REQUIREMENTS`: OpenVINO's cpu-bf16, ONNX Runtime's ort-cuda)."""
    if requirement == "cuda":
        return None if has_cuda() else "needs a CUDA GPU (none on this machine)"
    if requirement in ("fp16", "bf16"):
        flags = NATIVE_FLAGS[requirement]
        if has_cuda() or any(f in cpu_flags() for f in flags):
            return None
        return (f"needs native {requirement} matmul: a CUDA GPU or a CPU with {' or '.join(flags)} (this CPU: "
                f"{cpu_summary()}); without them torch emulates {requirement} about 25x slower than fp32")
    if requirement.startswith("cpu:"):
        flag = requirement[4:]
        return None if flag in cpu_flags() else f"needs the CPU flag {flag} (this CPU: {cpu_summary()})"
    raise ValueError(f"unknown machine requirement {requirement!r}")
