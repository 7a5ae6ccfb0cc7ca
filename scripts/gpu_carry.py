"""What a lent GPU machine needs from here, written into git-excluded folders of this checkout (its image has torch,
transformers and sentence-transformers, no registry, and a 64 MiB limit on what travels):

    python3 scripts/gpu_carry.py --reranker DIR --data DIR [--embedder DIR]

- .whl/: torchao and platformdirs (torch-fp8, scripts/fp8_batch.py, scripts/gpu_scoring.py need only these);
- .whl-mteb/: mteb and what it needs that the image lacks (a gate run's quality gate);
- .whl-polars/: polars, mteb's last need (51 MB: installed in a call of its own, the next call within the 30 s the
  machine stays warm);
- .gpu-real/reranker, .gpu-embedder/minilm: the models as fp16 safetensors copies (45 MB each: one per call);
- .gpu-small/scifact: the data's first 100 queries with their candidates and qrels, and the passages both name.

Each folder is added to .git/info/exclude. Versions: those that ran on the image of 2026-12 (Python 3.12).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any"]
WHEELS = {
    ".whl": ["torchao==0.18.0", "platformdirs"],
    ".whl-mteb": ["mteb>=2.26,<2.27", "datasets", "dill", "multiprocess", "pytrec-eval-terrier", "pydantic",
                  "pydantic-core", "annotated-types", "typing-inspection"],
    ".whl-polars": ["polars", "polars-runtime-32"],
}
FOLDERS = [*WHEELS, ".gpu-real", ".gpu-embedder", ".gpu-small"]


def exclude() -> None:
    path = ROOT / ".git" / "info" / "exclude"
    path.parent.mkdir(parents=True, exist_ok=True)
    have = set(path.read_text().split()) if path.is_file() else set()
    with path.open("a") as f:
        f.writelines(f"/{name}/\n" for name in FOLDERS if f"/{name}/" not in have)


def wheels() -> None:
    for folder, names in WHEELS.items():
        args = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
                "3.12", "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d",
                str(ROOT / folder), *names]
        subprocess.run(args, check=True)


def fp16_copy(source: Path, out: Path) -> None:
    """The model's folder with its float weights as fp16 (config dtype float16): the gate reads them as fp32 for its
    reference, so the reference is the fp16-rounded weights."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(source, out)
    for path in out.rglob("*.safetensors"):
        path.chmod(0o644)
        tensors = {k: v.astype("float16") if v.dtype.kind == "f" else v for k, v in load_file(path).items()}
        save_file(tensors, path, metadata={"format": "pt"})
    config = out / "config.json"
    config.chmod(0o644)
    data = json.loads(config.read_text())
    data["torch_dtype"] = data["dtype"] = "float16"
    config.write_text(json.dumps(data, indent=2))


def small_data(source: Path, out: Path, queries: int = 100) -> None:
    shutil.rmtree(out, ignore_errors=True)
    (out / "qrels").mkdir(parents=True)
    groups = [json.loads(line) for line in (source / "candidates.jsonl").read_text().splitlines() if line][:queries]
    qids, docs = {g["qid"] for g in groups}, {c["docid"] for g in groups for c in g["candidates"]}
    header, *rows = (source / "qrels" / "test.tsv").read_text().splitlines()
    kept = [header, *[row for row in rows if row.split("\t")[0] in qids]]
    docs |= {row.split("\t")[1] for row in kept[1:]}  # the loader refuses qrels naming passages the corpus lacks
    (out / "candidates.jsonl").write_text("".join(json.dumps(g) + "\n" for g in groups))
    for name, ids in (("queries.jsonl", qids), ("corpus.jsonl", docs)):
        lines = (source / name).read_text().splitlines()
        (out / name).write_text("".join(line + "\n" for line in lines if line and json.loads(line)["_id"] in ids))
    (out / "qrels" / "test.tsv").write_text("".join(row + "\n" for row in kept))
    if (source / "SOURCE.md").is_file():
        shutil.copyfile(source / "SOURCE.md", out / "SOURCE.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", type=Path, required=True, help="a cross-encoder folder (e.g. the shared one)")
    parser.add_argument("--data", type=Path, required=True, help="a data folder with candidates.jsonl (e.g. scifact)")
    parser.add_argument("--embedder", type=Path, help="a sentence-transformers folder (e.g. the default candidate's)")
    parser.add_argument("--no-wheels", action="store_true")
    args = parser.parse_args()
    exclude()
    if not args.no_wheels:
        wheels()
    fp16_copy(args.reranker, ROOT / ".gpu-real" / "reranker")
    if args.embedder:
        fp16_copy(args.embedder, ROOT / ".gpu-embedder" / "minilm")
    small_data(args.data, ROOT / ".gpu-small" / args.data.name)
    for name in FOLDERS:
        if (ROOT / name).exists():
            size = sum(p.stat().st_size for p in (ROOT / name).rglob("*") if p.is_file())
            print(f"{name}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
