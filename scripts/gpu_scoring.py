"""The gate's scoring pass against a raw forward of the same inputs on a CUDA device, per dtype, and torch-fp8.

    python3 scripts/gpu_scoring.py --tokenizer DIR --data DIR --out DIR [--queries 300] [--batch 32]

Random-weight models of two real shapes around the given tokenizer (random weights say nothing of quality; the
shapes decide the speed): an XLM-R-large-shape cross-encoder (24 layers, hidden 1024, one logit) and a
Qwen3-Embedding-0.6B-shape embedder (28 layers, hidden 1024, 16 query / 8 key-value heads, last-token pooling,
normalised), both saved with sentence-transformers' own `save`. For each variant, in the order a gate run makes them
(fp32 first: its pass tokenizes, the later ones reuse the batches):
- the gate's pass: quantgate.evaluation.scoring.score, as the gate calls it (on CUDA: quantgate.evaluation.prepared);
- the library's calls: the same function with the prepared path off (one predict() per query, encode() per block:
  what the gate ran before);
- a raw forward: the same inputs tokenized beforehand and already on the GPU, sorted by length over the whole pass,
  in batches of --batch, the model's forward alone (the model's own cost).
fp8 (torchao, compiled: quantgate.backends.torchao_fp8.quantize) runs where the GPU has float8 (8.9+) and torchao
imports. Writes OUT/gpu-scoring.json and OUT/gpu-scoring.md (the table) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import CrossEncoder, SentenceTransformer, models
from transformers import AutoTokenizer, Qwen3Config, Qwen3Model, XLMRobertaConfig, XLMRobertaForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quantgate.backends import torch_backend
from quantgate.backends.torchao_fp8 import quantize, skip_reason
from quantgate.core.candidate import upcast_activation
from quantgate.evaluation import prepared
from quantgate.evaluation.data import load as load_data
from quantgate.evaluation.scoring import _query_ends, score
from quantgate.variants.registry import VARIANTS

# --smoke: a CPU check of this script
SMOKE = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 2, "head_dim": 32}
DEVICE = "cuda"
LIBRARY_FIRST = False
DIAGNOSE = False
EMPTY_CACHE = True


def build(kind: str, tokenizer_dir: Path, out: Path, smoke: bool = False) -> Path:
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    raw = out / f"{kind}-raw"
    small = SMOKE if smoke else {}
    with torch.device(DEVICE):
        if kind == "reranker":
            config = XLMRobertaConfig(**{"vocab_size": len(tokenizer), "hidden_size": 1024, "num_hidden_layers": 24,
                                         "num_attention_heads": 16, "intermediate_size": 4096,
                                         "max_position_embeddings": 514, "type_vocab_size": 2, "num_labels": 1,
                                         **small})
            model = XLMRobertaForSequenceClassification(config)
        else:
            config = Qwen3Config(**{"vocab_size": len(tokenizer), "hidden_size": 1024, "num_hidden_layers": 28,
                                    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                                    "intermediate_size": 3072, "max_position_embeddings": 32768,
                                    **small, **({"num_key_value_heads": 1} if smoke else {})})
            model = Qwen3Model(config)
    model.save_pretrained(raw, safe_serialization=True)
    tokenizer.save_pretrained(raw)
    path = out / kind
    if kind == "reranker":
        CrossEncoder(str(raw), max_length=512).save(str(path))
    else:
        transformer = models.Transformer(str(raw), max_seq_length=512)
        pooling = models.Pooling(config.hidden_size, "lasttoken")
        SentenceTransformer(modules=[transformer, pooling, models.Normalize()]).save(str(path))
    return path


def load(kind: str, path: Path, variant: str):
    model = CrossEncoder(str(path), device=DEVICE) if kind == "reranker" else SentenceTransformer(str(path),
                                                                                                   device=DEVICE)
    if variant == "fp32":
        return upcast_activation(model) if kind == "reranker" else model
    model = model.to(torch.bfloat16 if variant in ("bf16", "fp8", "fp8-whole", "bf16-compiled") else torch.float16)
    if variant in ("fp8", "fp8-whole"):  # the gate's (its repeated layers compiled), and the whole model compiled
        model = quantize(model, kind, regional=variant == "fp8")
    elif variant == "bf16-compiled":  # what torch.compile alone gives, beside fp8 (which needs it)
        started = time.perf_counter()
        model.compile(dynamic=True)
        torch_backend._probe(model, kind)
        _sync()
        model.quantgate_compile_seconds = round(time.perf_counter() - started, 2)
    return upcast_activation(model) if kind == "reranker" else model


def raw_forward(model, items: list, batch: int, rounds: int = 2) -> float:
    """Seconds of the model's forward over `items` (pre-tokenized, on the GPU, length-sorted), best of `rounds`."""
    order = np.argsort([-model._input_length(x) for x in items])
    return _timed(model, [[items[i] for i in order[s:s + batch]] for s in range(0, len(order), batch)], rounds)[0]


def gate_batches(model, kind: str, data, qids: list[str], batch: int, across_calls: bool) -> list[list] | None:
    """The reranker's batches as the gate's pass makes them (calls of one query each; on CUDA sorted across them)."""
    if kind != "reranker":
        return None
    pairs = data.reranking_pairs(qids=qids)
    items = [(q, p) for _, _, q, p in pairs]
    ends = _query_ends([qid for qid, _, _, _ in pairs])
    calls = [prepared.Call(items[s:e], s) for s, e in zip([0, *ends], ends)]
    return [b for b, _, _ in prepared.batches(model, calls, batch, across_calls)]


def _timed(model, texts: list[list], rounds: int, pad: int | None = None) -> tuple[float, int]:
    """Best-of-`rounds` seconds of the forward over `texts`' batches, tokenized beforehand and on the GPU, and the
    tokens they hold, padding included."""
    kwargs = {"processing_kwargs": {"text": {"pad_to_multiple_of": pad}}} if pad else {}
    batches = [model.preprocess(b, **kwargs) for b in texts]
    batches = [{k: v.to(DEVICE) if hasattr(v, "to") else v for k, v in b.items()} for b in batches]
    grad = getattr(model, "quantgate_grad_mode", torch.inference_mode)
    best = float("inf")
    with grad():
        for b in batches[:3]:
            model(b)
        for _ in range(rounds):
            _sync()
            started = time.perf_counter()
            for b in batches:
                model(b)
            _sync()
            best = min(best, time.perf_counter() - started)
    return best, int(sum(b["input_ids"].numel() for b in batches if "input_ids" in b))


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def measure(kind: str, path: Path, data, qids: list[str], batch: int, variants: list[str], retrieval: bool
            ) -> list[dict]:
    rows, reference = [], None
    prepared.clear()
    retrieval = [data.queries[q] for q in qids] if kind == "embedder" and retrieval else None
    for variant in variants:
        if DEVICE == "cuda" and EMPTY_CACHE:
            torch.cuda.empty_cache()
        started = time.perf_counter()
        model = load(kind, path, variant)
        loaded = time.perf_counter() - started
        uses = prepared.applies(model)

        def library_pass(model=model):
            applies = prepared.applies
            prepared.applies = lambda m: False
            try:
                return score(model, kind, data, batch_size=batch, qids=qids, retrieval_queries=retrieval)
            finally:
                prepared.applies = applies

        library = library_pass() if LIBRARY_FIRST else None  # the pass that runs first meets every shape first
        gate = score(model, kind, data, batch_size=batch, qids=qids, retrieval_queries=retrieval)
        library = library or library_pass()
        if kind == "reranker":
            items = [(q, p) for _, _, q, p in data.reranking_pairs(qids=qids)]
            values, theirs = gate.scores, library.scores
        else:
            items, values, theirs = list(gate.texts), gate.embeddings, library.embeddings
        try:
            raw = raw_forward(model, items, batch)
        except AttributeError as err:  # another sentence-transformers than the one this script was written for
            print(f"raw forward not measured: {err}", flush=True)
            raw = float("nan")
        reference = values if reference is None else reference
        n = len(items)
        extra = {}
        if DIAGNOSE:  # where the gate's pass loses against the raw forward: a second pass, the gate's own batches
            again = score(model, kind, data, batch_size=batch, qids=qids, retrieval_queries=retrieval)
            extra["gate_again_s"] = round(again.seconds, 3)
            for name, across in (("gate_batches", True), ("per_query_batches", False)):
                texts = gate_batches(model, kind, data, qids, batch, across)
                if texts is not None:
                    seconds, tokens = _timed(model, texts, 2, prepared.PAD_MULTIPLE)
                    extra.update({f"raw_{name}_s": round(seconds, 3), f"{name}": len(texts), f"{name}_tokens": tokens})
        rows.append({"model": kind, "variant": variant, "items": n, "prepared_path": uses, "load_s": round(loaded, 2),
                     "compile_s": getattr(model, "quantgate_compile_seconds", None),
                     "gate_s": round(gate.seconds, 3), "library_s": round(library.seconds, 3),
                     "raw_s": round(raw, 3) if raw == raw else None,
                     "gate_items_s": round(n / gate.seconds, 1), "library_items_s": round(n / library.seconds, 1),
                     "raw_items_s": round(n / raw, 1) if raw == raw else None,
                     "gate_over_raw": round(raw / gate.seconds, 3) if raw == raw else None,
                     "library_over_raw": round(raw / library.seconds, 3) if raw == raw else None,
                     "max_abs_gate_vs_library": float(np.max(np.abs(values - theirs))),
                     "max_abs_vs_fp32": float(np.max(np.abs(values - reference))), **extra})
        print(json.dumps(rows[-1]), flush=True)
        del model
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | variant | items | gate's pass, items/s | library calls, items/s | raw forward, items/s | "
             "gate ÷ raw | library ÷ raw | max abs Δ gate vs library | max abs Δ vs fp32 | compile s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        raw = f"{r['raw_items_s']:,}" if r["raw_items_s"] is not None else "–"
        ratios = [f"{r[k]:.2f}" if r[k] is not None else "–" for k in ("gate_over_raw", "library_over_raw")]
        lines.append(f"| {r['model']} | {r['variant']} | {r['items']} | {r['gate_items_s']:,} | "
                     f"{r['library_items_s']:,} | {raw} | **{ratios[0]}** | {ratios[1]} | "
                     f"{r['max_abs_gate_vs_library']:.2g} | "
                     f"{r['max_abs_vs_fp32']:.2g} | {r['compile_s'] if r['compile_s'] is not None else '–'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--models", default="reranker,embedder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-scoring"))
    parser.add_argument("--no-retrieval", action="store_true", help="the embedder encodes the queries and their "
                        "candidates only, not the whole corpus (the gate's --gate-no-retrieval)")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, the prepared path forced: "
                        "checks the script, measures nothing")
    parser.add_argument("--variants", help="a subset of fp32,fp16,bf16,fp8,fp8-whole,bf16-compiled (the first is the "
                        "reference of the vs-fp32 column)")
    parser.add_argument("--pad", type=int, help="the prepared pass's pad multiple on CUDA (default: the gate's)")
    parser.add_argument("--no-cudnn-attention", action="store_true", help="scaled-dot-product attention without "
                        "its cuDNN backend (which plans each new shape)")
    parser.add_argument("--gate-cudnn-attention", action="store_true", help="the gate's pass with cuDNN's attention "
                        "backend first (the library's default order; the pass leaves it out)")
    parser.add_argument("--keep-allocator-cache", action="store_true", help="no torch.cuda.empty_cache() between "
                        "variants")
    parser.add_argument("--diagnose", action="store_true", help="also time a second gate pass and the raw forward "
                        "over the gate's own batches (rerankers)")
    parser.add_argument("--library-first", action="store_true", help="each variant's library pass before the gate's")
    args = parser.parse_args()
    global DEVICE, LIBRARY_FIRST, DIAGNOSE, EMPTY_CACHE
    LIBRARY_FIRST, DIAGNOSE, EMPTY_CACHE = args.library_first, args.diagnose, not args.keep_allocator_cache
    if args.pad:
        prepared.PAD_MULTIPLE = args.pad
    if args.gate_cudnn_attention:
        prepared.WITHOUT_CUDNN_ATTENTION = False
    if args.no_cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(False)
    if args.smoke:
        DEVICE = "cpu"
        prepared.applies = lambda m: True
    fp8_skip = skip_reason(VARIANTS["torch-fp8"], DEVICE)
    variants = ["fp32", "fp16", "bf16"] + ([] if fp8_skip else ["fp8", "fp8-whole"]) + ["bf16-compiled"]
    if args.variants:
        variants = [v for v in args.variants.split(",") if v in variants]
    facts = {"gpu": torch.cuda.get_device_name() if DEVICE == "cuda" else "none (--smoke)",
             "torch": torch.__version__, "transformers": transformers.__version__,
             "sentence_transformers": sentence_transformers.__version__, "batch": args.batch,
             "queries": args.queries, "fp8": fp8_skip or "measured", "pad_multiple": prepared.PAD_MULTIPLE,
             "cudnn_attention": not args.no_cudnn_attention,
             "gate_cudnn_attention": not prepared.WITHOUT_CUDNN_ATTENTION, "empty_cache": EMPTY_CACHE}
    print(json.dumps(facts), flush=True)
    data = load_data(args.data)
    qids = data.evaluation_order(0)[:args.queries]
    rows = []
    args.work.mkdir(parents=True, exist_ok=True)
    for kind in args.models.split(","):
        rows += measure(kind, build(kind, args.tokenizer, args.work, args.smoke), data, qids, args.batch, variants,
                        not args.no_retrieval)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu-scoring.json").write_text(json.dumps({"facts": facts, "rows": rows}, indent=1, allow_nan=False))
    text = table(rows)
    (args.out / "gpu-scoring.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
