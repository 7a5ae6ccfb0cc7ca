"""The tokenizer's share of a reranker's scoring time: the lever of tokenizing a data set once per tokenizer and
reusing the encodings across the variants that share it. Scores the first --pairs candidate pairs of --data (the
gate's scoring batch) with sentence-transformers' CrossEncoder.predict for each artifact given, and times the same
batches through the model's tokenizer alone.

    python scripts/tokenize_share.py --data ../shared/data/scifact \
        --model torch=../shared/models/minilm-l6-scifact-reranker \
        --model onnx-qint8=/tmp/cost20/cache/onnx-qint8-arm64-113b3bbb28900f29:onnx/model_qint8_arm64.onnx
"""

from __future__ import annotations

import argparse
import time

from sentence_transformers import CrossEncoder

from quantgate.evaluation.data import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH[:ONNX FILE]")
    parser.add_argument("--pairs", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset = load(args.data)
    pairs = [(q, p) for _, _, q, p in dataset.reranking_pairs()][: args.pairs]
    print("| model | predict s | tokenizer s | tokenizer share |")
    print("|---|---:|---:|---:|")
    for item in args.model:
        name, _, where = item.partition("=")
        path, _, onnx_file = where.partition(":")
        kwargs = {"backend": "onnx", "model_kwargs": {"file_name": onnx_file}} if onnx_file else {}
        model = CrossEncoder(path, device="cpu", **kwargs)
        model.predict(pairs[: args.batch_size], batch_size=args.batch_size)  # warm-up
        predict, tokenize = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            model.predict(pairs, batch_size=args.batch_size, show_progress_bar=False)
            predict.append(time.perf_counter() - started)
            started = time.perf_counter()
            for i in range(0, len(pairs), args.batch_size):
                batch = pairs[i : i + args.batch_size]
                model.tokenizer([q for q, _ in batch], [p for _, p in batch], padding=True, truncation=True,
                                return_tensors="pt", max_length=model.max_length)
            tokenize.append(time.perf_counter() - started)
        p, t = min(predict), min(tokenize)
        print(f"| {name} | {p:.2f} | {t:.2f} | {t / p:.1%} |", flush=True)


if __name__ == "__main__":
    main()
