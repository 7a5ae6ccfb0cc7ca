"""What the stored-format gate costs on a whole corpus: per format, index build and search time, and the memory it
adds above the float embeddings the scoring pass already holds (peak RSS sampled while the format is built and
searched, minus the RSS before). Reads the reference's scores from the gate's cache (run the gate on the data first).

    .venv/bin/python scripts/stored_formats_cost.py --data ../shared/data/scifact \
        --scores ~/.cache/quantgate/scores/torch-fp32-scifact-*.npz
"""

from __future__ import annotations

import argparse
import time

from quantgate.core import formats as format_ids
from quantgate.core.memory import MB, PeakSampler, rss
from quantgate.evaluation import formats
from quantgate.evaluation.data import load
from quantgate.evaluation.scoring import cached_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--scores", required=True, help="a scores .npz of the gate's cache (with the corpus encoded)")
    parser.add_argument("--formats", default="float32,int8,uint8,int8-rescore,binary,binary-rescore,dim256,dim128,"
                                             "dim256-int8,dim128-binary-rescore")
    parser.add_argument("--rescore-multiplier", type=int, default=4)
    parser.add_argument("--ranges-from", choices=("train", "corpus"), default="train",
                        help="int8/uint8 ranges from the train split's passages (the gate's default) or the corpus")
    args = parser.parse_args()
    dataset = load(args.data)
    scores, why = cached_scores(args.scores)
    if scores is None:
        raise SystemExit(f"{args.scores}: {why or 'absent'}")
    rows = {t: i for i, t in enumerate(scores.texts)}
    doc_ids = sorted(dataset.corpus)
    corpus = scores.embeddings[[rows[dataset.corpus[d]] for d in doc_ids]]
    qids = [q for q in dataset.test_queries if dataset.queries[q] in rows]
    queries = scores.embeddings[[rows[dataset.queries[q]] for q in qids]]
    train = {d for rel in dataset.qrels.get("train", {}).values() for d in rel}
    calibration = corpus[[i for i, d in enumerate(doc_ids) if d in train]] if args.ranges_from == "train" else corpus
    print(f"{dataset.name}: {len(doc_ids)} passages, {len(qids)} queries, {corpus.shape[1]} dimensions; "
          f"ranges from {len(calibration)} passages ({args.ranges_from})")
    print("| format | bytes/vector | index MB | build s | search s (all) | ms/query | added peak MB | NDCG@10 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    formats.evaluate(format_ids.parse("binary"), queries[:2], qids[:2], corpus[:10], doc_ids[:10], dataset.test_qrels,
                     None, 1)  # imports sentence-transformers, torch, faiss and pytrec_eval: not a format's cost
    for fmt in format_ids.parse_list(args.formats):
        before = rss()
        sampler = PeakSampler().start()
        started = time.perf_counter()
        ranges = formats.calibration_ranges(calibration, fmt) if fmt.calibrated else None
        quality, _ = formats.evaluate(fmt, queries, qids, corpus, doc_ids, dataset.test_qrels, ranges,
                                      args.rescore_multiplier)
        total = time.perf_counter() - started
        peak = sampler.stop()
        print(f"| {fmt.id} | {quality.bytes_per_vector:g} | {quality.index_bytes / 1e6:.2f} | "
              f"{quality.build_seconds:.3f} | {quality.search_seconds:.3f} | "
              f"{1000 * quality.search_seconds / len(qids):.3f} | {(peak - before) / MB:.1f} | "
              f"{quality.ndcg_at_10:.4f} |  (total {total:.2f} s)")


if __name__ == "__main__":
    main()
