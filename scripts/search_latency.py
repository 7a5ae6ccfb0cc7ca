"""Single-query search latency of one stored-format index, after a variant's runtime has just run, with faiss'
default OpenMP threads and with one (what gates/test_stored_formats.py times). Run from the repository root:
    python scripts/search_latency.py --variant onnx --cache DIR [--corpus 5183] [--format binary-rescore]
The index holds seeded random unit vectors of the candidate's width (latency does not depend on their values);
before each timed query the variant encodes a batch, as the gate's scoring pass has just done.
"""

import argparse
import contextlib
import time

import numpy as np

from quantgate.core import formats as format_ids
from quantgate.evaluation import formats
from quantgate.session.core import GateSession
from quantgate.session.settings import GateSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", default="onnx")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--corpus", type=int, default=5183)
    parser.add_argument("--format", default="binary-rescore")
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    session = GateSession(GateSettings(cache_dir=args.cache, variants=(args.variant,)))
    [spec] = session.context.registry.select([args.variant])
    model = session.factory.load(spec)
    texts = ["a sentence about lighthouses and the sea"] * 32
    dim = np.asarray(model.encode(texts[:1])).shape[1]
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((args.corpus, dim))
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = corpus[: args.queries] + 0.1 * rng.standard_normal((args.queries, dim))
    fmt = format_ids.parse(args.format)
    ranges = formats.calibration_ranges(corpus, fmt) if fmt.calibrated else None
    index = formats.StoredIndex(corpus, fmt, ranges, 4)
    for label, single in (("faiss default threads", False), ("one search thread", True)):
        times = []
        for i in range(args.queries):
            model.encode(texts, batch_size=32)  # the runtime has just run, as in the gate
            with formats.one_search_thread() if single else contextlib.nullcontext():
                started = time.perf_counter()
                index.search(queries[[i]])
                times.append(time.perf_counter() - started)
        ms = np.asarray(times) * 1000
        print(f"{args.variant} {args.format} corpus {args.corpus}: {label}: p50 {np.percentile(ms, 50):.3f} ms, "
              f"p99 {np.percentile(ms, 99):.3f} ms")


if __name__ == "__main__":
    main()
