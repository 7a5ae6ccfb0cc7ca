"""The first look's lever: at which look a variant equal to the reference on every query is decided, for several
`[decision] first_look` values, from the reference's per-query values in the gate's own seeded order (its scores
from the cache: no inference). Variants equal to the reference (onnx, O1, O2, openvino on the shared reranker) are
the only ones an earlier look can stop sooner: a changed variant needs `min_queries` and its interval's width.

    python scripts/copy_looks.py --candidate ../shared/models/minilm-l6-scifact-reranker \
        --data ../shared/data/scifact --cache /tmp/cost20/cache --first-looks 5,10,20,40
"""

from __future__ import annotations

import argparse

import numpy as np

from quantgate.decisions.decision import Sequence, decide
from quantgate.evaluation.quality import LIMIT_KEYS, evaluate_scores
from quantgate.session.core import GateSession
from quantgate.session.settings import GateSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default=None)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cache", required=True, help="a gate cache holding the reference's scores of --data")
    parser.add_argument("--first-looks", default="5,10,20,40")
    args = parser.parse_args()
    gate = GateSession(GateSettings(candidate=args.candidate, data=(args.data,), cache_dir=args.cache,
                                    variants=("torch-fp32",), device="cpu", retrieval=False))
    gate.resolve()
    dataset, settings = gate.context.datasets[0], gate.context.thresholds.decision
    order = gate.context.order(dataset)
    quality = evaluate_scores(dataset, gate.store.scores(gate.context.reference, dataset), "reference")
    limits = gate.context.thresholds.quality_limits("onnx")
    print("| first_look | looks | decided at (queries) | pairs of a copy (of every pair) |")
    print("|---:|---|---|---:|")
    for first in (int(n) for n in args.first_looks.split(",")):
        sequence = Sequence(len(order), first, 1 - settings["confidence"])
        decided = None
        for look, n in enumerate(sequence.looks):
            outcomes = []
            for metric, per_query in quality.per_query.items():
                values = np.array([per_query[q] for q in order[:n]])
                outcomes.append(decide(values, values, limits[LIMIT_KEYS[metric]], sequence.critical(look),
                                       settings["min_queries"])[0])
            if all(o == "pass" for o in outcomes):
                decided = n
                break
        top_k = gate.context.settings.top_k
        pairs, every = (len(dataset.reranking_pairs(top_k=top_k, qids=qids)) for qids in (order[:decided], order))
        print(f"| {first} | {', '.join(map(str, sequence.looks))} | {decided} | {pairs} ({pairs / every:.1%}) |")


if __name__ == "__main__":
    main()
