"""Tiny random-weight models of the architectures teams ship, saved by sentence-transformers' own `save`.

2 layers, hidden 64, the all-MiniLM-L6-v2 tokenizer (the embedded default candidate's), seeded weights.
Random weights say nothing about quality; they do say whether each variant builds, loads, scores and matches
fp32, which is what scripts/architectures.py and tests/test_architectures.py ask of every backend.

    python scripts/tiny_models.py qwen3-embedder /tmp/qwen3-embedder      # one model
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import transformers
from sentence_transformers import CrossEncoder, SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
from transformers import AutoTokenizer

from quantgate.core.candidate import default_candidate_path

HIDDEN = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
# a base-size decoder (about 110M parameters with the all-MiniLM vocabulary): what speed and size scale with
BASE_DECODER = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 4,
                "head_dim": 64, "intermediate_size": 3072}
DECODER = {**HIDDEN, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 512}

# name -> (transformers config class, its keyword arguments, kind, head, pooling)
# head: "classification" (*ForSequenceClassification, 1 label), "causal-lm" (*ForCausalLM: a LogitScore reranker)
# or "base" (the bare model, for an embedder). Pooling as the architecture's published embedders use it.
ARCHITECTURES: dict[str, tuple[str, dict, str, str, str]] = {
    "bert-reranker": ("BertConfig", {**HIDDEN}, "reranker", "classification", ""),
    "bert-embedder": ("BertConfig", {**HIDDEN}, "embedder", "base", "mean"),
    "mpnet-reranker": ("MPNetConfig", {**HIDDEN}, "reranker", "classification", ""),
    "mpnet-embedder": ("MPNetConfig", {**HIDDEN}, "embedder", "base", "mean"),
    "xlm-roberta-reranker": ("XLMRobertaConfig", {**HIDDEN}, "reranker", "classification", ""),
    "xlm-roberta-embedder": ("XLMRobertaConfig", {**HIDDEN}, "embedder", "base", "cls"),
    "modernbert-reranker": ("ModernBertConfig", {**HIDDEN, "pad_token_id": 0}, "reranker", "classification", ""),
    "modernbert-embedder": ("ModernBertConfig", {**HIDDEN, "pad_token_id": 0}, "embedder", "base", "mean"),
    "deberta-v2-reranker": ("DebertaV2Config", {**HIDDEN}, "reranker", "classification", ""),
    "deberta-v2-embedder": ("DebertaV2Config", {**HIDDEN}, "embedder", "base", "mean"),
    "electra-reranker": ("ElectraConfig", {**HIDDEN, "embedding_size": 64}, "reranker", "classification", ""),
    "electra-embedder": ("ElectraConfig", {**HIDDEN, "embedding_size": 64}, "embedder", "base", "mean"),
    "qwen3-embedder": ("Qwen3Config", {**DECODER, "pad_token_id": 0}, "embedder", "base", "lasttoken"),
    "qwen3-reranker": ("Qwen3Config", {**DECODER, "pad_token_id": 0}, "reranker", "classification", ""),
    "qwen3-lm-reranker": ("Qwen3Config", {**DECODER, "pad_token_id": 0}, "reranker", "causal-lm", ""),
    "gemma3-embedder": ("Gemma3TextConfig", {**DECODER, "pad_token_id": 0, "use_bidirectional_attention": True,
                                             "sliding_window": 64}, "embedder", "base", "mean"),
    "gemma3-reranker": ("Gemma3TextConfig", {**DECODER, "pad_token_id": 0, "sliding_window": 64},
                        "reranker", "classification", ""),
}
DECODERS = ("qwen3", "gemma3")


def build(name: str, out: Path, tokenizer_dir: Path | None = None, seed: int = 0, max_length: int = 128,
          shape: dict | None = None) -> Path:
    """The model `name` of ARCHITECTURES in `out` (kept when it is already there); `shape` overrides its sizes
    (e.g. BASE_DECODER: the same architecture at a real model's width and depth)."""
    if (out / "config.json").is_file():
        return out
    config_name, kwargs, kind, head, pooling = ARCHITECTURES[name]
    kwargs = {**kwargs, **(shape or {})}
    torch.manual_seed(seed)
    # As these architectures' own tokenizers: segment ids only for BERT, ELECTRA and DeBERTa-v2 (MPNet's and
    # ModernBERT's forward take none, and XLM-RoBERTa's exports drop them: a BERT tokenizer's second-segment ids would
    # make torch and ONNX differ). An init argument, so the saved tokenizer_config.json keeps it.
    segments = config_name in ("BertConfig", "ElectraConfig", "DebertaV2Config")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or default_candidate_path()), **(
        {} if segments else {"model_input_names": ["input_ids", "attention_mask"]}))
    tokenizer.model_max_length = max_length
    config = getattr(transformers, config_name)(vocab_size=tokenizer.vocab_size, num_labels=1, **kwargs)
    if config.model_type in ("bert", "electra", "deberta-v2", "xlm-roberta", "mpnet"):
        config.max_position_embeddings = 514  # XLM-RoBERTa/MPNet count from the pad id + 1
    auto = {"classification": transformers.AutoModelForSequenceClassification,
            "causal-lm": transformers.AutoModelForCausalLM, "base": transformers.AutoModel}[head]
    model = auto.from_config(config)
    with torch.no_grad():  # random weights large enough that scores spread (the defaults give near-constant outputs)
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.2)
    raw = out.parent / f"{out.name}-hf"
    model.save_pretrained(raw, safe_serialization=True)
    tokenizer.save_pretrained(raw)
    if kind == "reranker":
        CrossEncoder(str(raw), max_length=max_length, device="cpu").save(str(out))
    else:
        transformer = Transformer(str(raw), max_seq_length=max_length)
        if pooling == "lasttoken":
            transformer.tokenizer.padding_side = "left"  # Qwen3-Embedding pads left and pools the last token
        modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling), Normalize()]
        SentenceTransformer(modules=modules, device="cpu").save(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(ARCHITECTURES))
    parser.add_argument("out", type=Path)
    parser.add_argument("--tokenizer", type=Path, default=None, help="default: the embedded candidate's")
    args = parser.parse_args()
    print(build(args.name, args.out, args.tokenizer))


if __name__ == "__main__":
    main()
