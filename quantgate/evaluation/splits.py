"""`quantgate split`: a BEIR folder's test queries as two disjoint folders (validation, evaluation)."""

from __future__ import annotations

import json
import random
import shutil
import uuid
from pathlib import Path

from quantgate.evaluation.data import DataFormatError, load


def split_test(source: str | Path, out: str | Path, validation: int, seed: int = 0) -> tuple[Path, Path]:
    """Split a BEIR folder's test queries into two disjoint folders, `out/validation` (a seeded
    sample of `validation` queries) and `out/evaluation` (the rest, and the source's other splits,
    e.g. train for calibration), each with its own qrels, candidate lists and the corpus. Each
    folder is written beside its place and renamed into it."""
    dataset = load(source)
    qids = sorted(q for q in dataset.test_qrels if q in dataset.queries)
    if not 0 < validation < len(qids):
        raise DataFormatError(f"{dataset.path}: cannot hold out {validation} of its {len(qids)} test queries")
    random.Random(f"split-{seed}").shuffle(qids)
    parts = {"validation": set(qids[:validation]), "evaluation": set(qids[validation:])}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, chosen in parts.items():
        tmp = out / f".{name}-{uuid.uuid4().hex[:8]}"
        (tmp / "qrels").mkdir(parents=True)
        shutil.copyfile(dataset.path / "corpus.jsonl", tmp / "corpus.jsonl")
        # evaluation keeps the other splits (train: calibration) and their queries; validation only its own
        keep = chosen if name == "validation" else {q for q in dataset.queries if q not in parts["validation"]}
        with open(dataset.path / "queries.jsonl", encoding="utf-8") as src, open(tmp / "queries.jsonl", "w") as dst:
            dst.writelines(line for line in src if line.strip() and str(json.loads(line)["_id"]) in keep)
        if name == "evaluation":
            for other in (dataset.path / "qrels").glob("*.tsv"):
                if other.name != "test.tsv":
                    shutil.copyfile(other, tmp / "qrels" / other.name)
        with open(tmp / "qrels" / "test.tsv", "w", encoding="utf-8") as dst:
            dst.write("query-id\tcorpus-id\tscore\n")
            dst.writelines(f"{q}\t{d}\t{r}\n" for q in sorted(chosen) for d, r in sorted(dataset.test_qrels[q].items()))
        if (dataset.path / "candidates.jsonl").is_file():
            with open(dataset.path / "candidates.jsonl", encoding="utf-8") as src, \
                    open(tmp / "candidates.jsonl", "w", encoding="utf-8") as dst:
                dst.writelines(line for line in src if line.strip() and str(json.loads(line)["qid"]) in chosen)
        final = out / name
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        written.append(final)
    return written[0], written[1]
