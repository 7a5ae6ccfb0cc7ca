"""Where a speed benchmark's time goes, so that its figures measure the model and not only the tokenizer.

pytest-benchmark times `predict()`/`encode()` end to end (the figure of record). The same inputs go through
the same steps again, one phase at a time (before each round for a batch, which is the same every round; after
the rounds, in the same order, for batch-1 inputs, which differ):

- call: what `predict`/`encode` do before tokenizing, every call: move the model to its device and set eval
  mode (walks every parameter and module: 0.45 + 0.19 ms of 8.7 ms for MiniLM-L6 at batch 1 on 2 CPU cores),
  sort the inputs by length;
- tokenize: the model's own `preprocess` (the fast tokenizer's batch encoding, parallel in Rust);
- transfer: the tensors to the model's device;
- forward: the model on those pre-tokenized tensors (the transformer module; synchronized on CUDA);
- post: what `predict`/`encode` does after it: pooling and normalization modules, the activation, the copy
  of the result back to host memory item by item.

Model-only throughput is items / forward time: what a server that tokenizes elsewhere (text-embeddings-
inference, infinity) gets from the same model. The phases add up to the end-to-end time within a few percent
at batch sizes past 1 (`phase_sum_vs_e2e`, tests/test_phases.py); a large gap means the end-to-end call does
something the phases do not (a wrapped predict). On CUDA, `raw_forward` times a plain transformers forward of
the same files on the same batch: the gate's model-only figure is compared with it (docs/measurements.md).
"""

from __future__ import annotations

import inspect
import os
import statistics
import time
from typing import Any

from quantgate.core.gates import Gate
from quantgate.core.results import RunResult
from quantgate.variants.registry import ordered

PHASES = ("call", "tokenize", "transfer", "forward", "post")


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def parallel_encoding() -> tuple[bool, int]:
    """Whether fast tokenizers encode a batch in parallel here (TOKENIZERS_PARALLELISM not off), on how many
    threads (RAYON_NUM_THREADS, else every core)."""
    on = os.environ.get("TOKENIZERS_PARALLELISM", "").lower() not in ("0", "false", "off", "no")
    return on, int(os.environ.get("RAYON_NUM_THREADS") or os.cpu_count() or 1)


def header_line() -> str:
    on, threads = parallel_encoding()
    return ("quantgate: speed: end to end (predict/encode, pytest-benchmark) and each phase on the same inputs "
            "(call, tokenize, transfer, forward, post); tokenization: fast tokenizers' batch encoding "
            + (f"in parallel on {threads} threads" if on else "sequential (TOKENIZERS_PARALLELISM is off)"))


def tokenizer_facts(model) -> dict[str, Any]:
    """Whether this model's batch encoding ran in parallel: a fast (Rust) tokenizer, parallelism not off."""
    fast = bool(getattr(model.tokenizer, "is_fast", False))
    on, threads = parallel_encoding()
    return {"fast": fast, "parallel": fast and on, "threads": threads}


class PhaseTimer:
    """Times the phases of one call on `items`, round by round; the first `skip` rounds are warm-up."""

    def __init__(self, model, kind: str, device: str, skip: int = 1) -> None:
        self.model, self.kind, self.device, self.skip = model, kind, device, skip
        # an engine behind predict()/encode() (OpenVINO GenAI, a server) has no phases to time: only its end to end
        self.opaque = not hasattr(model, "named_children")
        self.modules = [] if self.opaque else [module for _, module in model.named_children()]
        self.samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
        self.tokens: list[tuple[int, int]] = []  # (real tokens, padded positions) of each timed round
        self.totals: list[float] = []  # each timed round's phases together
        self.features = None  # the last round's tensors on the device (the raw baseline runs on them)
        self.preprocess = None if self.opaque else getattr(model, "preprocess", None) or model.tokenize  # older name

    def run(self, batches: list[list]) -> PhaseTimer:
        for items in batches:
            self.time_round(items)
        return self

    def time_round(self, items: list) -> None:
        if self.opaque:
            return
        import torch
        from sentence_transformers.util import batch_to_device

        clock = time.perf_counter
        with torch.inference_mode():
            started = clock()
            self.model.to(self.model.device)
            self.model.eval()
            sorted(range(len(items)), key=lambda i: -len(str(items[i])))
            called = clock()
            features = self.preprocess(items)
            tokenized = clock()
            features = batch_to_device(features, self.model.device)
            _sync(self.device)
            moved = clock()
            out = self.modules[0](features)
            _sync(self.device)
            forwarded = clock()
            self._post(out)
            done = clock()
        if self.skip:
            self.skip -= 1
            return
        spans = (called - started, tokenized - called, moved - tokenized, forwarded - moved, done - forwarded)
        for phase, seconds in zip(PHASES, spans):
            self.samples[phase].append(seconds)
        self.totals.append(done - started)
        mask = features["attention_mask"]
        self.tokens.append((int(mask.sum()), int(mask.numel())))
        self.features = features

    def mean_tokens(self, batch: int) -> float:
        """Real tokens per item over the timed rounds: the tokenizer already counted them."""
        return sum(real for real, _ in self.tokens) / max(len(self.tokens), 1) / batch

    def _post(self, out) -> None:
        """What predict()/encode() do after the transformer, result in numpy (read in sentence-transformers 5.7;
        on 6.0.1, the GPU machine's, phases / e2e read 0.85-1.05 for batches of 32 and more)."""
        import numpy as np

        for module in self.modules[1:]:
            out = module(out)
        if self.kind == "reranker":
            scores = out["scores"]
            if self.model.activation_fn is not None:
                scores = self.model.activation_fn(scores)
            if scores.ndim > 1 and scores.shape[-1] == 1:
                scores = scores.squeeze(-1)
            np.asarray([score.cpu().float().numpy() for score in scores])  # predict copies item by item
        else:
            embeddings = out["sentence_embedding"].cpu()
            np.asarray([embedding.float().numpy() for embedding in embeddings])

    def summary(self, batch: int, e2e_median_s: float, e2e_min_s: float,
                model_only_s: float | None = None) -> dict[str, Any]:
        """extra_info's phase figures: medians per phase, their shares, model-only and tokenization rates.
        Model-only is `model_only_s` (back_to_back, on a GPU) or else the forward phase's median (on a CPU,
        where no device waits between phases)."""
        medians = {phase: statistics.median(values) for phase, values in self.samples.items() if values}
        if len(medians) != len(PHASES):
            return {}
        total = sum(medians.values())
        real = statistics.median(t for t, _ in self.tokens) / batch
        padded = statistics.median(p for _, p in self.tokens) / batch
        return {
            "phases_ms": {phase: round(s * 1000, 4) for phase, s in medians.items()},
            "phase_shares": {phase: round(s / total, 4) for phase, s in medians.items()},
            "phase_rounds": len(self.samples["forward"]),
            # Coverage, 1.0 = the phases are the whole call: the least disturbed round of each, since this VM's
            # noise only adds (rounds of 18 ms went to 32 ms, two or three in six, in both loops alike).
            "phase_sum_vs_e2e": round(min(self.totals) / e2e_min_s, 4),
            "model_only_items_per_s": round(batch / (model_only_s or medians["forward"]), 2),
            "model_only_from": "back-to-back forwards" if model_only_s else "the forward phase",
            "e2e_items_per_s": round(batch / e2e_median_s, 2),
            "tokenize_tokens_per_s": round(real * batch / medians["tokenize"], 1),
            "padded_tokens_per_item": round(padded, 1),
            "tokenizer": tokenizer_facts(self.model),
        }


def raw_model(model, kind: str, dtype: str, device: str, trust_remote_code: bool = False):
    """A plain transformers model (AutoModelForSequenceClassification / AutoModel, its default attention) loaded
    from the files the gate's model was loaded from, in `dtype`."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    inner = getattr(model[0], "model", None) or model[0].auto_model  # sentence-transformers 6 / 5
    auto = AutoModelForSequenceClassification if kind == "reranker" else AutoModel
    raw = auto.from_pretrained(inner.name_or_path, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code)
    raw.gate_attention = inner.config._attn_implementation
    return raw.to(device).eval()


def back_to_back(timer: PhaseTimer, rounds: int, raw=None) -> tuple[float, dict[str, Any] | None]:
    """Model-only as a server that tokenizes elsewhere gets it: forwards back to back on the last round's
    tensors, synchronized, median seconds after one warm-up. On a GPU this is not the forward phase: between
    two phases the GPU idles while the host tokenizes (the first H100 run: fp16 MiniLM-L6 at batch 128, 17.4k
    items/s for the forward phase vs 20.1k for the same forward in plain transformers back to back). With `raw`
    (raw_model), the plain transformers forward runs alternately with the gate's on the same tensors, so drift
    and clocks hit both alike."""
    import torch

    accepted = inspect.signature(raw.forward).parameters if raw is not None else {}
    inputs = {k: v for k, v in timer.features.items() if k in accepted and isinstance(v, torch.Tensor)}
    calls = {"gate": lambda: timer.modules[0](dict(timer.features))}
    if raw is not None:
        calls["raw"] = lambda: raw(**inputs)
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for i in range(rounds + 1):
            for name, call in calls.items():
                _sync(timer.device)
                started = time.perf_counter()
                call()
                _sync(timer.device)
                if i:
                    seconds[name].append(time.perf_counter() - started)
    gate = statistics.median(seconds["gate"])
    if raw is None:
        return gate, None
    batch, median = int(inputs["input_ids"].shape[0]), statistics.median(seconds["raw"])
    return gate, {"dtype": str(raw.dtype).removeprefix("torch."), "attention": raw.config._attn_implementation,
                  "gate_attention": raw.gate_attention, "forward_ms": round(median * 1000, 4),
                  "items_per_s": round(batch / median, 2), "rounds": rounds,
                  "gate_model_only_vs_raw": round(median / gate, 3)}


def _raw_cell(raw: dict | None) -> str:
    return f"{raw['items_per_s']:.1f} ({raw['gate_model_only_vs_raw']:.2f})" if raw else "–"


def phase_lines(verdict: dict) -> list[str]:
    """summary.md's "Where the time goes": every speed benchmark's phase shares, end-to-end and model-only."""
    variants = RunResult.from_dict(verdict).variants
    rows, tokenizer = [], None
    for vid in ordered(variants):
        row = variants[vid]
        timed = [(k, g.numbers) for k, g in row.gates.items() if k.startswith(Gate.SPEED.per_batch(""))
                 and "phase_shares" in g.numbers]
        for key, info in sorted(timed, key=lambda kv: kv[1]["batch_size"]):
            tokenizer = info["tokenizer"]
            shares = " | ".join(f"{info['phase_shares'][phase]:.0%}" for phase in PHASES)
            auto = " (auto)" if key == Gate.SPEED.per_batch("bauto") else ""
            rows.append(f"| `{vid}` | {info['batch_size']}{auto} | "
                        f"{info['e2e_items_per_s']:.1f} | {info['model_only_items_per_s']:.1f} | {shares} | "
                        f"{info['phase_sum_vs_e2e']:.2f} | {info['tokenize_tokens_per_s']:,.0f} | "
                        f"{_raw_cell(info.get('raw_forward'))} |")
    if not rows:
        return []
    how = ("a fast tokenizer, batch encoding in parallel" if tokenizer["parallel"] else
           "a fast tokenizer with TOKENIZERS_PARALLELISM off: sequential" if tokenizer["fast"] else
           "a slow (Python) tokenizer: sequential")
    return ["", "## Where the time goes", "",
            f"Each benchmark's inputs were also timed one phase at a time, a batch before each of its rounds, batch-1 "
            f"inputs after them ({how}). "
            "End-to-end = `predict`/`encode` (pytest-benchmark, the figure of record); model-only = items / forward "
            "time on pre-tokenized tensors; phases / e2e = how much of the end-to-end time the phases account for; "
            "raw = a plain transformers forward of the same files on the same batch (CUDA only).", "",
            "| variant | batch | end-to-end items/s | model-only items/s | call | tokenize | transfer | forward | post "
            "| phases / e2e | tokenization tokens/s | raw transformers items/s (gate / raw) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows]
