"""Score every pair of a data set with some variants and save the scores (one .npz per variant), for
scripts/error_rates.py: the per-query values of real variants that its simulations resample.

    python scripts/per_query_scores.py --candidate ../shared/models/minilm-l6-scifact-reranker \
        --data ../shared/data/scifact --variants torch-fp32,onnx,onnx-qint8-avx512_vnni \
        --mutant noise03=noise:0.03 --out /tmp/pq/reranker-scifact

Every query of the set is scored (no sequential stop): these are the populations the simulations
draw from. Scores are saved with quantgate.evaluation.scoring.save_scores (plain arrays, no pickle).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quantgate.evaluation.scoring import save_scores
from quantgate.session.core import GateSession
from quantgate.session.settings import GateSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default=None)
    parser.add_argument("--data", required=True)
    parser.add_argument("--calibration-data", default=None)
    parser.add_argument("--variants", required=True, help="comma-separated variant ids (torch-fp32 is always scored)")
    parser.add_argument("--mutant", action="append", default=[], help="NAME=key:value, as --gate-mutant")
    parser.add_argument("--cache", default="/tmp/pq/cache")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    mutants = tuple(args.mutant)
    ids = list(dict.fromkeys(["torch-fp32", *args.variants.split(","), *(m.split("=")[0] for m in mutants)]))
    gate = GateSession(GateSettings(candidate=args.candidate, data=(args.data,), cache_dir=args.cache,
                                    calibration_data=(args.calibration_data,) if args.calibration_data else (),
                                    variants=tuple(ids), mutants=mutants, thresholds=None, device="cpu",
                                    retrieval=False),
                       progress=lambda msg: print(msg, flush=True))
    gate.resolve()
    dataset = gate.context.datasets[0]
    out = Path(args.out)
    for vid in ids:
        target = out / f"{vid}.npz"
        if target.is_file():
            continue
        save_scores(gate.store.scores(gate.context.registry.variants[vid], dataset), target)
        print(f"saved {target}", flush=True)


if __name__ == "__main__":
    main()
