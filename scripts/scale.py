"""Scale benchmark: the full CPU matrix on base- and large-size models, measured for memory and time.

Models are built from a config (BERT base: 12 layers x 768, 110M parameters; large: 24 x 1024, 335M), with
the tokenizer of --tokenizer and random weights (seeded): quality is not the point, memory and time are.
Each model is gated on a small subset of --data under `/usr/bin/time -v`, with the memory guard's limit set
to the bound the gate must keep (2 GB + 4 x the fp32 weights), so a variant that would not fit is skipped
with its reason instead of the run being killed. Per variant: peak RSS (sampled), wall time and the time guard's
estimate from the verdict, build time (calibration and accuracy control's tuning included) from the artifact's
manifest, scoring time; per run: maximum RSS and elapsed time from time -v.

    python scripts/scale.py --tokenizer ../shared/models/minilm-l6-scifact-reranker \
        --data ../shared/data/scifact --out /tmp/scale --sizes base,large --kinds reranker,embedder

Writes OUT/results.json and prints a markdown table (docs/measurements.md keeps it with this command).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import torch
from sentence_transformers import CrossEncoder, SentenceTransformer, models
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

from quantgate.core.cache import MANIFEST
from quantgate.core.candidate import fp32_weight_bytes
from quantgate.core.memory import GB, bound
from quantgate.variants.registry import ordered

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
         "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}}


def build_model(size: str, kind: str, tokenizer_dir: Path, out: Path, max_length: int, seed: int) -> Path:
    """A sentence-transformers CrossEncoder or SentenceTransformer of `size`, random weights, saved to `out`."""
    if (out / "config.json").is_file():
        return out
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **SIZES[size],
                        num_labels=1 if kind == "reranker" else 2)
    raw = out.parent / f"{out.name}-hf"
    (BertForSequenceClassification if kind == "reranker" else BertModel)(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    if kind == "reranker":
        CrossEncoder(str(raw), max_length=max_length, device="cpu").save(str(out))
    else:
        transformer = models.Transformer(str(raw), max_seq_length=max_length)
        pooling = models.Pooling(transformer.get_embedding_dimension(), "mean")
        SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(out))
    return out


def thresholds_for_scale(out: Path, queries: int = 20, candidates: int = 5, trials: int = 3) -> Path:
    """thresholds.toml with a small accuracy-control validation split (tuning time, not its result, matters); NNCF's
    ranking queries keep the project's share of the split (10 of 100: 2 of 20)."""
    text = (ROOT / "thresholds.toml").read_text()
    default = tomllib.loads(text)["accuracy_control"]
    ranking = max(1, round(queries * default["ranking_queries"] / default["validation_queries"]))
    for key, value in (("validation_queries", queries), ("validation_candidates", candidates), ("max_trials", trials),
                       ("ranking_queries", ranking)):
        text = re.sub(rf"^{key} = \d+", f"{key} = {value}", text, flags=re.MULTILINE)
    path = out / "thresholds.toml"
    path.write_text(text)
    return path


def gate(model: Path, args, out: Path, limit_gb: float) -> dict:
    report = out / "report"
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "pytest", "gates/", "-q", "-p", "no:cacheprovider",
               "--candidate", str(model), "--gate-data", str(args.data), "--gate-max-queries", str(args.queries),
               "--gate-top-k", str(args.top_k), "--gate-no-retrieval", "--gate-calibration-size", str(args.calibration),
               "--gate-speed-batch", "8", "--gate-speed-rounds", "3", "--gate-latency-inputs", str(args.latency_inputs),
               "--gate-memory-limit", f"{limit_gb:.3f}", "--gate-cache", str(out / "cache"), "--gate-report",
               str(report), "--gate-thresholds", str(thresholds_for_scale(out)), "--gate-no-resume",
               "--benchmark-storage", f"file://{out / 'benchmarks'}", "--benchmark-autosave",
               *(["--variants", args.variants] if args.variants else []),
               *(["--gate-time-budget", f"{args.budget:g}"] if args.budget else [])]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    (out / "log.txt").write_text(proc.stdout + proc.stderr)
    peak_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    verdict = json.loads((report / "verdict.json").read_text()) if (report / "verdict.json").is_file() else {}
    return {"returncode": proc.returncode, "seconds": round(time.perf_counter() - started, 1),
            "max_rss_gb": round(int(peak_kb.group(1)) / 2**20, 3) if peak_kb else None,
            "complete": verdict.get("complete"), "skipped": verdict.get("skipped", {}), "budget_min": args.budget,
            "variants": {vid: {"decision": e.get("decision"), **e.get("memory", {}), **times(vid, e, verdict)}
                         for vid, e in verdict.get("variants", {}).items()}}


def times(vid: str, entry: dict, verdict: dict) -> dict:
    """Where a variant's wall time went: its build (the artifact's manifest; calibration and accuracy control's
    tuning are part of it), its scoring of the gate's data, and what the time guard planned for it."""
    manifest = Path(entry.get("artifact", {}).get("path", "/nonexistent")) / MANIFEST
    build = json.loads(manifest.read_text()).get("build_seconds") if manifest.is_file() else None
    scoring = sum(s for key, s in verdict.get("scoring_seconds", {}).items() if key.startswith(f"{vid}@"))
    return {"wall_s": entry.get("wall_seconds"), "build_s": build, "scoring_s": round(scoring, 1),
            "estimated_s": entry.get("time", {}).get("estimated_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, type=Path, help="a model folder whose tokenizer to use")
    parser.add_argument("--data", required=True, type=Path, help="a BEIR folder (test queries with candidates)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--sizes", default="base,large")
    parser.add_argument("--kinds", default="reranker,embedder")
    parser.add_argument("--queries", type=int, default=20, help="--gate-max-queries")
    parser.add_argument("--top-k", type=int, default=5, help="--gate-top-k")
    parser.add_argument("--calibration", type=int, default=32, help="--gate-calibration-size")
    parser.add_argument("--latency-inputs", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=128, help="the models' truncation length (tokens)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=None, help="--variants (default: the whole CPU matrix)")
    parser.add_argument("--budget", type=float, default=None, help="--gate-time-budget MINUTES (default: none)")
    parser.add_argument("--limit-gb", type=float, default=None,
                        help="the memory guard's limit (default: the bound); a large value measures without the guard")
    args = parser.parse_args()
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for size in args.sizes.split(","):
        for kind in args.kinds.split(","):
            name = f"{size}-{kind}"
            out = args.out / name
            out.mkdir(parents=True, exist_ok=True)
            model = build_model(size, kind, args.tokenizer, out / "model", args.max_length, args.seed)
            weights = fp32_weight_bytes(model)
            limit = args.limit_gb or bound(weights) / GB
            print(f"{name}: {weights / 4 / 1e6:.0f}M parameters, fp32 weights {weights / GB:.2f} GB, "
                  f"bound {bound(weights) / GB:.2f} GB, guard limit {limit:.2f} GB", flush=True)
            result = {"parameters_m": round(weights / 4 / 1e6, 1), "fp32_weights_gb": round(weights / GB, 3),
                      "bound_gb": round(bound(weights) / GB, 3), "guard_limit_gb": round(limit, 3),
                      **gate(model, args, out, limit)}
            results[name] = result
            results_path.write_text(json.dumps(results, indent=2))
            print(table({name: result}), flush=True)


def table(results: dict) -> str:
    lines = []
    for name, r in results.items():
        budget = f"; --gate-time-budget {r['budget_min']:g} min" if r.get("budget_min") else ""
        lines += [f"### {name}: {r['parameters_m']}M parameters, bound {r['bound_gb']:.2f} GB; run max RSS "
                  f"{r['max_rss_gb']} GB in {r['seconds'] / 60:.1f} min (exit {r['returncode']}, complete "
                  f"{r['complete']}{budget})", "",
                  "| variant | decision | peak RSS GB | build s | scoring s | wall s | planned s |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for vid in ordered(r["variants"]):
            v = r["variants"][vid]
            peak = v.get("peak_rss_mb")
            lines.append(f"| {vid} | {v['decision']} | {peak / 1024 if peak else 0:.2f} | {v.get('build_s')} | "
                         f"{v.get('scoring_s')} | {v.get('wall_s')} | {v.get('estimated_s')} |")
        lines += [f"- skipped: {why}" for why in r["skipped"].values()] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
