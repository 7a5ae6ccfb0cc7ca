"""Memory of one variant's build, in one process: RSS before, the kernel's peak over it, RSS after the build
once collected, and the artifact's load and release. Reproduces docs/measurements.md's build figures:

    python scripts/build_memory.py --candidate MODEL --data ../shared/data/scifact --variant inc-int8
    python scripts/build_memory.py --candidate MODEL --data ../shared/data/scifact --variant onnx-O2
    python scripts/build_memory.py --candidate MODEL --data ../shared/data/scifact --variant onnx-O2 --loaded-model

`--loaded-model` builds an O-level the way sentence-transformers' `export_optimized_onnx_model` does (a model
loaded with an ONNX Runtime session), for comparison with quantgate's build from the folder. MODEL: e.g. the
base model scripts/scale.py writes (OUT/base-reranker/model). The cache is a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import optimum.onnxruntime  # noqa: F401 -- every import a build needs is in the baseline
import torch  # noqa: F401
from sentence_transformers import CrossEncoder, SentenceTransformer, export_optimized_onnx_model

from quantgate.core import memory
from quantgate.session.core import GateSession, GateSettings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--loaded-model", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        gate = GateSession(GateSettings(candidate=args.candidate, cache_dir=cache, data=(args.data,),
                                        thresholds=str(ROOT / "thresholds.toml"), max_queries=20, top_k=5,
                                        retrieval=False, calibration_samples=32))
        gate.resolve()
        spec = gate.context.registry.variants[args.variant]
        if spec.depends_on:
            gate.factory.artifact(gate.context.registry.variants[spec.depends_on])
        memory.release()
        before = memory.rss()
        sampler = memory.PeakSampler().start()  # the kernel's exact mark when the build raises it
        if args.loaded_model:
            folder = gate.factory.artifact(gate.context.registry.variants["onnx"]).path
            cls = CrossEncoder if gate.context.candidate.kind == "reranker" else SentenceTransformer
            model = cls(str(folder), backend="onnx", model_kwargs={"file_name": "onnx/model.onnx"})
            export_optimized_onnx_model(model, spec.opts["optimize"], tempfile.mkdtemp(dir=cache))
            del model
        else:
            gate.factory.artifact(spec)
        peak = sampler.stop()
        memory.release()
        after = memory.rss()
        line = (f"{args.variant}{' (loaded model)' if args.loaded_model else ''}: before {before / memory.MB:.0f} MB, "
                f"build peak +{(peak - before) / memory.MB:.0f} MB, after the build {after / memory.MB:.0f} MB")
        if not args.loaded_model:
            gate.factory.load(spec)
            loaded = memory.rss()
            gate.factory.release(spec)
            line += f", loaded {loaded / memory.MB:.0f} MB, released {memory.rss() / memory.MB:.0f} MB"
        print(line)


if __name__ == "__main__":
    main()
