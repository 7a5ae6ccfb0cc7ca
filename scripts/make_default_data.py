"""Writes quantgate/default_data/quantgate-mini, the evaluation set the gate runs on when no data is given.

Every text is in scripts/default_data.txt, written for quantgate by its authors; nothing is taken from a dataset.
Per topic: passages, test queries (each with the passage that answers it, grade 2, and optionally one that is
relevant, grade 1) and train queries (calibration and accuracy control only; never a test query). The other
passages of a query's topic answer other questions on the same subject: they are the hard negatives.
Each test query's candidate list holds its topic's passages and passages of other topics up to CANDIDATES, in a
seeded order (there is no first-stage retriever). Run from the repository root:
    python scripts/make_default_data.py
"""

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "scripts" / "default_data.txt"
OUT = ROOT / "quantgate" / "default_data" / "quantgate-mini"
CANDIDATES, OTHERS = 12, 3  # per test query: its topic's passages, and at least OTHERS from other topics


def read_topics(path: Path) -> dict[str, dict[str, list]]:
    topics: dict[str, dict[str, list]] = {}
    topic = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("# "):
            continue
        if line.startswith("## "):
            topic = topics.setdefault(line[3:].strip(), {"p": [], "test": [], "train": []})
            continue
        kind, _, text = line.partition(": ")
        if topic is None or kind not in ("p", "test", "train"):
            raise SystemExit(f"{path}:{number}: expected `## topic`, `p:`, `test:` or `train:`")
        if kind == "p":
            topic["p"].append(text)
        else:
            fields = [f.strip() for f in text.split("|")]
            topic[kind].append((fields[0], *(None if f == "-" else int(f) for f in fields[1:])))
    return topics


def main(out: Path = OUT) -> None:
    topics = read_topics(SOURCE)
    rng = random.Random(16)
    corpus, queries, test, train, lists = [], [], [], [], []
    for name, topic in topics.items():
        corpus += [{"_id": f"{name}-{i}", "title": "", "text": text} for i, text in enumerate(topic["p"])]
        for n, (text, answer, *related) in enumerate(topic["test"]):
            qid = f"q-{name}-{n}"
            grades = {f"{name}-{answer}": 2} | {f"{name}-{r}": 1 for r in related if r is not None}
            queries.append({"_id": qid, "text": text})
            test += [(qid, d, g) for d, g in grades.items()]
            others = [f"{o}-{i}" for o in topics if o != name for i in range(len(topics[o]["p"]))]
            ids = [f"{name}-{i}" for i in range(len(topic["p"]))]
            ids += rng.sample(others, max(OTHERS, CANDIDATES - len(ids)))
            rng.shuffle(ids)
            lists.append({"qid": qid, "query": text, "candidates": [
                {"docid": d, "rank": r, "label": grades.get(d, 0)} for r, d in enumerate(ids, 1)]})
        for n, (text, answer) in enumerate(topic["train"]):
            queries.append({"_id": f"t-{name}-{n}", "text": text})
            train.append((f"t-{name}-{n}", f"{name}-{answer}", 2))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus", corpus), ("queries", queries), ("candidates", lists)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, rows in (("test", test), ("train", train)):
        (out / "qrels" / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows), encoding="utf-8")
    print(f"{len(topics)} topics, {len(corpus)} passages, {len(lists)} test and {len(train)} train queries")


if __name__ == "__main__":
    main()
