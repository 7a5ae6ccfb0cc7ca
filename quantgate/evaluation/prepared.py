"""A torch model's scoring pass on a CUDA device, at the model's speed.

sentence-transformers' `predict()` / `encode()` tokenize each batch in the loop that runs the model, and the gate
calls them once per query (rerankers) or per block of texts (embedders). On one lent H100, the 335M-parameter
reranker's fp16 pass over scifact's 9,000 pairs spent 8.05 s in the forward, 4.28 s tokenizing the same pairs again
for every variant and about 2 s in 300 calls' overhead: 0.56x a raw forward of the same batches.

Here the inputs go through the model's own `preprocess` and forward, sorted by length as the library sorts them,
`batch_size` at a time (on a CPU each call's batches are the library's, so the scores are the same bit for bit; on
CUDA the calls that share a prompt are sorted together, `batches`), but:
- each batch is tokenized once per tokenizer and prompt and kept for every variant that shares them (fp32, fp16,
  bf16 and fp8 copies of one candidate do);
- the next batches are tokenized on a background thread while the device runs this one, into pinned memory, and
  copied without a wait;
- outputs stay on the device until the pass ends (predict() copies each score to the host on its own);
- the model runs one batch before the pass, so the pass is not its first;
- attention runs without cuDNN's backend (`WITHOUT_CUDNN_ATTENTION`).
Measured on one lent H200 (docs/measurements.md, "The scoring pass on a GPU"): 0.81-0.86x a warm raw forward of the
same inputs in fp16 and bf16, 0.95-0.98x in fp32, on an XLM-R-large-shape reranker and a Qwen3-0.6B-shape embedder.
On a CPU the library's own calls run (`applies`); tests/test_prepared.py checks this path equals them bit for bit on
fp32 on the CPU, and within 16-bit noise on a GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

AHEAD = 4  # batches tokenized ahead of the forward
# On one H100 the Qwen3-0.6B-shape embedder's first fp16 pass over 2,228 texts took 11.9 s and a second pass over the
# same batches 7.0 s (the raw forward's speed); the XLM-R-large-shape reranker's first pass paid no such cost. A pass
# meets each batch length once: padding to a multiple of 16 on CUDA leaves about 32 lengths up to 512 instead of
# hundreds (and suits tensor cores); on a CPU the library's exact lengths are kept.
PAD_MULTIPLE = 16
# On CUDA the pass's scaled-dot-product attention leaves out cuDNN's backend, which torch 2.11 tries first for a
# padded 16-bit batch and which builds an execution plan for every new (batch, length) shape: on one lent H200 the
# XLM-R-large-shape reranker's first bf16 pass over 100 scifact queries (94 batches, ~30 lengths) took 5.49 s with
# it and 2.67 s without, against 2.13 s for a second pass (plans built); fp16 7.73 s and 3.76 s. The library's own
# calls (what the speed gate times) keep the default order. The scores move within 16-bit noise: max abs 4.9e-4
# (fp16) and 3.9e-3 (bf16) against the library's calls, where bf16 itself is 4.1e-3 from fp32. A compiled model
# (torch-fp8) runs as it was compiled, under the default order: the flags changed around a compiled graph were not
# measured on a GPU.
WITHOUT_CUDNN_ATTENTION = True
CACHE_ELEMENTS = 100_000_000  # token-tensor elements kept across variants (about 0.8 GB of int64)
_NEEDS = ("preprocess", "_input_length", "_can_flatten_inputs", "_interleave_sorted_indices", "_resolve_prompt")


@dataclass
class Call:
    """One library call's worth of inputs: what `predict(inputs, prompt=)` or `encode(inputs, prompt=, task=)`
    would get, and where its outputs go in the pass (`at`: the index of its first input)."""

    inputs: list
    at: int
    prompt: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def applies(model) -> bool:
    """Whether a loaded variant is scored here: a torch sentence-transformers model on a CUDA device whose library
    exposes what its own loop uses (any other model, or another library version, keeps the library's calls)."""
    try:
        import torch  # noqa: PLC0415 -- torch only once a model is scored
    except ImportError:
        return False
    device = getattr(model, "device", None)
    return (isinstance(model, torch.nn.Module) and getattr(device, "type", None) == "cuda"
            and all(hasattr(model, name) for name in _NEEDS))


def run(model, calls: list[Call], batch_size: int, output: str, progress: Callable[[int], None] | None = None
        ) -> np.ndarray:
    """Every call's outputs in input order, float32 on the host: `output` "scores" (a cross-encoder's, after its
    activation, the first column of a model with more) or "sentence_embedding" (an embedder's, cut to the model's
    truncate_dim)."""
    import torch  # noqa: PLC0415 -- torch only once a model is scored

    device = model.device
    pin = device.type == "cuda"
    plan = batches(model, calls, batch_size, across_calls=pin)
    if not plan:
        return np.zeros(0, dtype=np.float32)
    key = _fingerprint(model)
    model.eval()
    outputs, where = [], []
    grad_mode = getattr(model, "quantgate_grad_mode", torch.inference_mode)  # torch-fp8 runs under no_grad
    with ThreadPoolExecutor(1, thread_name_prefix="quantgate-tokenize") as pool, grad_mode(), \
            _attention(pin and not hasattr(model, "quantgate_compile_seconds")):
        ahead = deque(pool.submit(_features, model, key, b, c, pin) for b, _, c in plan[:AHEAD])
        if not getattr(model, "_quantgate_warm", False):  # a first forward pays for kernel and allocator set-up
            _forward(model, _to(ahead[0].result(), device), plan[0][2], output)
            model._quantgate_warm = True
        for i, (batch, positions, call) in enumerate(plan):
            features = ahead.popleft().result()
            if i + AHEAD < len(plan):
                nxt = plan[i + AHEAD]
                ahead.append(pool.submit(_features, model, key, nxt[0], nxt[2], pin))
            outputs.append(_forward(model, _to(features, device), call, output))
            where.extend(positions)
            if progress is not None:
                progress(len(batch))
        values = torch.cat(outputs).float().cpu().numpy()
    result = np.empty_like(values)
    result[np.asarray(where)] = values
    return result


def batches(model, calls: list[Call], batch_size: int, across_calls: bool = False) -> list[tuple[list, list, Call]]:
    """The pass's batches: (inputs, their positions in the pass, the call whose prompt and arguments they take).
    Without `across_calls`, the library's batches of each call (what `predict()` / `encode()` would make). With it
    (on CUDA), the inputs of every call that shares a prompt and arguments sorted together, so a batch holds inputs
    of like length: on one lent H100 the XLM-R-large-shape reranker's bf16 forward over 100 scifact queries' 3,000
    pairs took 2.55 s in one batch per query (30 candidates padded to the longest: 1.53M tokens) and 2.16 s sorted
    over the pass (1.33M tokens)."""
    if not across_calls:
        return [(batch, positions, call) for call in calls
                for batch, positions in _sorted(model, call.inputs, range(call.at, call.at + len(call.inputs)),
                                                batch_size)]
    groups: dict[tuple, tuple[Call, list, list]] = {}
    for call in calls:
        _, inputs, positions = groups.setdefault((call.prompt, tuple(sorted(call.kwargs.items()))), (call, [], []))
        inputs.extend(call.inputs)
        positions.extend(range(call.at, call.at + len(call.inputs)))
    return [(batch, where, call) for call, inputs, positions in groups.values()
            for batch, where in _sorted(model, inputs, positions, batch_size)]


def _sorted(model, inputs: list, positions, batch_size: int):
    """`inputs` sorted longest first by the model's own measure (interleaved where the model flattens inputs), as
    the library sorts one call's, `batch_size` at a time; with each input's position in the pass."""
    positions = list(positions)
    order = np.argsort([-model._input_length(x) for x in inputs])
    if model._can_flatten_inputs():
        order = model._interleave_sorted_indices(order)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield [inputs[i] for i in idx], [positions[int(i)] for i in idx]


def _attention(cuda: bool):
    """The attention backends of the pass: on CUDA, flash, memory-efficient and math attention (not cuDNN's)."""
    if not (cuda and WITHOUT_CUDNN_ATTENTION):
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: PLC0415 -- torch only once a model is scored

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _forward(model, features: dict, call: Call, output: str):
    out = model(features, **call.kwargs)
    if output == "scores":
        scores = out["scores"]
        if getattr(model, "activation_fn", None) is not None:
            scores = model.activation_fn(scores)
        return scores.reshape(len(scores), -1)[:, 0]
    embeddings = out["sentence_embedding"]
    dim = getattr(model, "truncate_dim", None)
    return embeddings[..., :dim] if dim else embeddings


def _to(features: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in features.items()}


_cache: OrderedDict[tuple, dict] = OrderedDict()
_cached_elements = 0


def _features(model, key: str, batch: list, call: Call, pin: bool) -> dict:
    """The model's own `preprocess` of one batch, kept under the tokenizer's fingerprint (least recently used
    batches dropped past CACHE_ELEMENTS)."""
    global _cached_elements
    prompt = model._resolve_prompt(call.prompt, None)
    name = (key, prompt, tuple(sorted(call.kwargs.items())), tuple(batch))
    found = _cache.get(name)
    if found is not None:
        _cache.move_to_end(name)
        return found
    if pin:  # on CUDA, lengths in steps of PAD_MULTIPLE (the padding is masked)
        try:
            features = model.preprocess(batch, prompt=prompt, **call.kwargs,
                                        processing_kwargs={"text": {"pad_to_multiple_of": PAD_MULTIPLE}})
        except TypeError:  # a library whose preprocess takes no processing_kwargs
            features = model.preprocess(batch, prompt=prompt, **call.kwargs)
    else:
        features = model.preprocess(batch, prompt=prompt, **call.kwargs)
    if pin:
        features = {k: v.pin_memory() if hasattr(v, "pin_memory") else v for k, v in features.items()}
    size = sum(v.numel() for v in features.values() if hasattr(v, "numel"))
    _cache[name] = features
    _cached_elements += size
    while _cached_elements > CACHE_ELEMENTS and len(_cache) > 1:
        _, dropped = _cache.popitem(last=False)
        _cached_elements -= sum(v.numel() for v in dropped.values() if hasattr(v, "numel"))
    return features


def _fingerprint(model) -> str:
    """What decides a batch's tokens: the tokenizer's own serialisation (a fast tokenizer's JSON: vocabulary,
    normaliser, truncation), its class and max length, and the model's modules as it prints them (pooling and
    prompt settings). A model whose tokenizer cannot be serialised gets a key of its own object."""
    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return f"object-{id(model)}"
    digest = hashlib.sha256(backend.to_str().encode())
    digest.update(f"{type(model).__name__}\0{type(tokenizer).__name__}\0{getattr(model, 'max_length', None)}\0"
                  f"{getattr(model, 'max_seq_length', None)}\0{model!r}".encode())
    return digest.hexdigest()


def clear() -> None:
    """Forget every kept batch (tests; a long-lived process that gates unrelated models)."""
    global _cached_elements
    _cache.clear()
    _cached_elements = 0
