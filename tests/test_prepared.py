"""The prepared scoring pass (quantgate.evaluation.prepared): the library's batches, tokenized once, on a GPU.

On the CPU the gate keeps the library's calls; these tests run the prepared pass there anyway and check it gives
the same numbers bit for bit on fp32, for both kinds, with and without prompts, and that a second variant with the
same tokenizer tokenizes nothing again. On a CUDA machine the 16-bit pass is checked against the library's calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantgate.config import PACKAGED_THRESHOLDS, load_thresholds
from quantgate.evaluation import prepared
from quantgate.evaluation.data import default_data
from quantgate.evaluation.encoding import PLAIN, SOURCES, TASK_TYPES, Encoding
from quantgate.evaluation.scoring import score

E5 = Encoding(SOURCES[1], tuple((t, r, f"{r}: ") for t in TASK_TYPES for r in ("query", "document")))


def _load(kind: str, path, device: str = "cpu", dtype=None):
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    torch.manual_seed(0)
    model = CrossEncoder(str(path), device=device) if kind == "reranker" else SentenceTransformer(str(path),
                                                                                                   device=device)
    return model.to(dtype) if dtype is not None else model


def _both(monkeypatch, model, kind: str, encoding: Encoding, qids: list[str]):
    """The gate's scores of `qids` through the library's calls, then through the prepared pass."""
    data = default_data()
    library = score(model, kind, data, batch_size=8, qids=qids, retrieval_queries=None, encoding=encoding)
    monkeypatch.setattr(prepared, "applies", lambda m: True)
    mine = score(model, kind, data, batch_size=8, qids=qids, retrieval_queries=None, encoding=encoding)
    monkeypatch.undo()
    return library, mine


@pytest.mark.parametrize("kind,encoding", [("reranker", PLAIN), ("embedder", PLAIN), ("embedder", E5)],
                         ids=["reranker", "embedder", "embedder-prompted"])
def test_the_prepared_pass_equals_the_library_calls_bit_for_bit_on_fp32(monkeypatch, kind, encoding, tiny_reranker,
                                                                        embedder_path):
    prepared.clear()
    model = _load(kind, tiny_reranker if kind == "reranker" else embedder_path)
    assert not prepared.applies(model)  # on a CPU the gate keeps the library's calls
    qids = default_data().evaluation_order(0)[:6]
    library, mine = _both(monkeypatch, model, kind, encoding, qids)
    assert library.keys == mine.keys and len(mine.keys) > 40
    assert np.array_equal(library.scores, mine.scores)
    if kind == "embedder":
        assert mine.texts == library.texts and np.array_equal(library.embeddings, mine.embeddings)
        if encoding.prompted:  # the prompts reached the model: the same texts score otherwise without them
            plain = score(model, kind, default_data(), batch_size=8, qids=qids, encoding=PLAIN)
            assert np.max(np.abs(plain.scores - mine.scores)) > 1e-3


def test_a_variant_with_the_same_tokenizer_tokenizes_nothing_again(monkeypatch, tiny_reranker):
    prepared.clear()
    monkeypatch.setattr(prepared, "applies", lambda m: True)
    qids = default_data().evaluation_order(0)[:4]
    first = score(_load("reranker", tiny_reranker), "reranker", default_data(), batch_size=8, qids=qids)
    second = _load("reranker", tiny_reranker)
    calls = []
    original = second.preprocess
    second.preprocess = lambda *a, **k: calls.append(1) or original(*a, **k)
    again = score(second, "reranker", default_data(), batch_size=8, qids=qids)
    assert calls == [] and np.array_equal(first.scores, again.scores)
    prepared.clear()
    score(second, "reranker", default_data(), batch_size=8, qids=qids)
    assert calls  # the counter counts: with nothing kept, the batches are tokenized


def _cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (the prepared pass runs on CUDA only)")
    return torch


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["reranker", "embedder"])
def test_the_16bit_cuda_pass_agrees_with_the_library_calls(monkeypatch, kind, dtype, tiny_reranker, embedder_path):
    torch = _cuda()
    model = _load(kind, tiny_reranker if kind == "reranker" else embedder_path, "cuda", getattr(torch, dtype))
    assert prepared.applies(model)
    qids = default_data().evaluation_order(0)[:20]
    data = default_data()
    mine = score(model, kind, data, batch_size=8, qids=qids)
    monkeypatch.setattr(prepared, "applies", lambda m: False)
    library = score(model, kind, data, batch_size=8, qids=qids)
    assert library.keys == mine.keys
    # 16-bit noise: the same batches, attention through another kernel (the pass leaves out cuDNN's). A quarter of
    # the variant's own max_abs_error limit against fp32 (thresholds.toml: torch-fp16 0.03, torch-bf16 0.08); measured
    # on one H200 (XLM-R-large shape, 3,000 pairs): 4.9e-4 in fp16, 3.9e-3 in bf16
    variant = "torch-fp16" if dtype == "float16" else "torch-bf16"
    limit = load_thresholds(PACKAGED_THRESHOLDS).agreement_limits(variant, kind)
    assert np.max(np.abs(library.scores - mine.scores)) < limit["max_abs_error"] / 4


def test_on_cuda_the_calls_that_share_a_prompt_are_sorted_together(tiny_reranker):
    """The batches across calls hold every input once, at its own position, longest first within each prompt; calls
    with another prompt never share a batch."""
    model = _load("reranker", tiny_reranker)
    data = default_data()
    pairs = [(q, p) for _, _, q, p in data.reranking_pairs(qids=data.evaluation_order(0)[:5])]
    calls = [prepared.Call(pairs[s:s + 30], s, "a: " if s < 60 else None) for s in range(0, len(pairs), 30)]
    plan = prepared.batches(model, calls, 8, across_calls=True)
    positions = [p for _, where, _ in plan for p in where]
    assert sorted(positions) == list(range(len(pairs)))
    assert all(pairs[p] == x for batch, where, _ in plan for x, p in zip(batch, where))
    assert {call.prompt for _, where, call in plan if where[0] < 60} == {"a: "}
    assert all(call.prompt == ("a: " if max(where) < 60 else None) and (min(where) < 60) == (max(where) < 60)
               for _, where, call in plan)
    lengths = [model._input_length(x) for batch, where, _ in plan if where[0] < 60 for x in batch]
    assert lengths == sorted(lengths, reverse=True)  # one run over both calls of the prompt
    per_call = prepared.batches(model, calls, 8)
    assert len(plan) <= len(per_call) and sorted(p for _, w, _ in per_call for p in w) == sorted(positions)


def test_the_cuda_pass_runs_attention_without_cudnn_and_puts_the_setting_back():
    """cuDNN's attention plans each new batch shape (2-4 s of a 100-query 16-bit pass on an H200): the pass leaves it
    out on CUDA, leaves the other backends on, restores the process's setting after, and changes nothing on a CPU."""
    torch = pytest.importorskip("torch")
    cuda = torch.backends.cuda
    assert cuda.cudnn_sdp_enabled()
    with prepared._attention(True):
        assert not cuda.cudnn_sdp_enabled()
        assert cuda.flash_sdp_enabled() and cuda.mem_efficient_sdp_enabled() and cuda.math_sdp_enabled()
    assert cuda.cudnn_sdp_enabled()
    with prepared._attention(False):
        assert cuda.cudnn_sdp_enabled()
