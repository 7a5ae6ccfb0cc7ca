"""Where torch-fp8's batch dependence comes from, on a CUDA GPU with float8 (compute capability 8.9+) and torchao.

    python3 scripts/fp8_batch.py RERANKER_DIR DATA_DIR

The shared MiniLM reranker's torch-fp8 failed the batch gate on an H100 (a pair's score moved 0.046 after sigmoid
with the batch it was in; torch-bf16 0.009). This scores 32 pairs of DATA_DIR (the first 4 candidates of its first 8
queries: candidates.jsonl, corpus.jsonl) alone and in one padded batch of 32, in bf16 eager, fp8 eager (quantized,
not compiled) and fp8 compiled (the gate's: quantgate.backends.torchao_fp8), each against fp32 alone: whether the
quantization or the compile moves a pair with its batch. Prints one line per variant.
"""

from __future__ import annotations

import sys

import torch
from sentence_transformers import CrossEncoder

from quantgate.backends.torchao_fp8 import compile_regions, float8_linears
from quantgate.evaluation.data import load


def pairs_of(data: str) -> list[tuple[str, str]]:
    """The gate's own reranking pairs (quantgate.evaluation.data): the first 4 candidates of the first 8 queries."""
    return [(query, passage) for _, _, query, passage in load(data).reranking_pairs(top_k=4, max_queries=8)]


def scores(model, pairs, batch: int) -> torch.Tensor:
    """Sigmoid scores, each pair alone (batch 1) or all in batches of `batch`; under no_grad as the gate runs fp8
    (the compiled float8 graph does not run under inference_mode)."""
    predict = getattr(type(model).predict, "__wrapped__", type(model).predict)
    with torch.no_grad():
        if batch == 1:
            return torch.tensor([float(predict(model, [p], batch_size=1, convert_to_tensor=True).float().reshape(-1)[0])
                                 for p in pairs])
        return predict(model, pairs, batch_size=batch, convert_to_tensor=True).float().reshape(-1).cpu()


def main() -> None:
    path, data = sys.argv[1], sys.argv[2]
    pairs = pairs_of(data)
    reference = scores(CrossEncoder(path, device="cuda").float(), pairs, 1)  # fp32 whatever dtype the files hold
    for name in ("bf16", "fp8-eager", "fp8-compiled"):
        model = CrossEncoder(path, device="cuda").to(torch.bfloat16)
        if name.startswith("fp8"):
            float8_linears(model)
            if name == "fp8-compiled":
                compile_regions(model)
        alone, batched = scores(model, pairs, 1), scores(model, pairs, len(pairs))
        print(f"{name:13s} alone vs batch of {len(pairs)}: max {float((alone - batched).abs().max()):.4f}  alone vs "
              f"fp32: max {float((alone - reference).abs().max()):.4f}  batched vs fp32: max "
              f"{float((batched - reference).abs().max()):.4f}", flush=True)


if __name__ == "__main__":
    main()
