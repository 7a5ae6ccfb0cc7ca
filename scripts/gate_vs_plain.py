"""Gate-loaded variant vs the same artifact loaded by plain sentence-transformers the same way: items/s at
batch 32, median of 5 rounds, the two timed alternately in each round. "The same way": torch in the variant's
dtype; ONNX with its file; OpenVINO with its file and, for a variant pinned to f32, the f32 precision hint
(what a user who wants f32 writes) -- a bf16 variant is compared with a plain load at OpenVINO's defaults
(what `backend="openvino"` runs). Both precisions are read back from the compiled models. From the repository
root, with a warm cache:
    .venv/bin/python scripts/gate_vs_plain.py ../shared/models/minilm-l6-scifact-reranker ../shared/data/trec-dl19
    .venv/bin/python scripts/gate_vs_plain.py "" ../shared/data/trec-dl19 --variants "openvino*"  # the default embedder
    .venv/bin/python scripts/gate_vs_plain.py ../shared/models/minilm-l6-scifact-reranker \
        ../shared/data/trec-dl19 --variants 'openvino*'
"""

import argparse
import gc
import statistics
import time

from quantgate.backends import runtime_facts
from quantgate.core.candidate import load_model
from quantgate.session.core import GateSession, GateSettings
from quantgate.speed import bench

BATCH = 32
ROUNDS = 5


def plain_model(artifact, spec, kind: str):
    """The artifact loaded as a user would, or None for a family plain sentence-transformers does not load."""
    info = artifact.load_info
    if info["backend"] == "torch" and "torch_dtype" in info:
        import torch  # noqa: PLC0415 -- only for torch variants

        return load_model(artifact.path, kind, model_kwargs={"torch_dtype": getattr(torch, info["torch_dtype"])})
    if info["backend"] == "onnx":
        return load_model(artifact.path, kind, "onnx", model_kwargs={"file_name": info["file_name"]})
    if info["backend"] == "openvino":
        precision = spec.opts.get("inference_precision", "f32")
        pinned = {"ov_config": {"INFERENCE_PRECISION_HINT": precision}} if precision == "f32" else {}
        return load_model(artifact.path, kind, "openvino", model_kwargs={"file_name": info["file_name"], **pinned})
    return None


def precision(model) -> str:
    facts = runtime_facts(model)
    return facts.get("inference_precision") or facts.get("dtype") or "/".join(facts.get("providers", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidate")
    parser.add_argument("data")
    parser.add_argument("--variants", default=None, help="ids or globs, comma-separated (default: every CPU variant)")
    args = parser.parse_args()
    gate = GateSession(GateSettings(candidate=args.candidate, data=(args.data,), thresholds=None, device="cpu"))
    kind = gate.context.candidate.kind
    items = bench.speed_items(gate.context.datasets[0], kind, BATCH)
    print(f"{kind} {args.candidate}, {args.data} items, batch {BATCH}, median of {ROUNDS} rounds, alternating\n")
    print("| variant | gate: precision | gate items/s | plain sentence-transformers: precision | plain items/s "
          "| ratio |\n|---|---|---:|---|---:|---:|")
    for spec in gate.context.registry.select(args.variants.split(",") if args.variants else None):
        if gate.factory.skip_reason(spec) or spec.family not in ("torch", "onnx", "openvino"):
            continue
        artifact = gate.factory.artifact(spec)
        ours, theirs = gate.factory.load(spec), plain_model(artifact, spec, kind)
        if theirs is None:
            continue
        calls = [bench.make_call(model, kind, items, BATCH) for model in (ours, theirs)]
        times: list[list[float]] = [[], []]
        for call in calls:
            call()  # warm-up
        for _ in range(ROUNDS):
            for call, seconds in zip(calls, times):
                start = time.perf_counter()
                call()
                seconds.append(time.perf_counter() - start)
        gate_rate, plain_rate = (BATCH / statistics.median(t) for t in times)
        print(f"| {spec.id} | {precision(ours)} | {gate_rate:.1f} | {precision(theirs)} | {plain_rate:.1f} | "
              f"{gate_rate / plain_rate:.2f} |", flush=True)
        gate.factory.release(spec)
        del ours, theirs, calls
        gc.collect()


if __name__ == "__main__":
    main()
