"""Intel Neural Compressor 3.x int8 (`neural_compressor.torch.quantization`).

INC 3.x without IPEX quantizes through PT2E: the transformer is captured with
`neural_compressor.torch.export.export` (torch.export, dynamic batch and sequence),
`prepare` inserts observers for the default static config (X86InductorQuantizer, W8A8),
the calibration inputs run through it, and `convert` gives a quantize-dequantize graph.
The graph is saved with INC's PT2E `save_load` (a torch.export archive + qconfig.json)
in `inc/`; the artifact keeps the candidate's tokenizer, configs and modules so the loader
can put the quantized graph in place of the transformer inside sentence-transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, load_st, max_length, tokenize
from quantgate.cache import Artifact

GRAPH_DIR = "inc"
CALIBRATION_BATCH = 8


def _inputs(encoded, names: list[str]) -> tuple:
    return tuple(encoded[n] for n in names)


def _wrapper(model, names: list[str], output: str):
    """The transformer with positional tensor inputs and one tensor output (what torch.export wants)."""
    import torch

    class WithTokenTypes(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return getattr(out, output)

    class WithoutTokenTypes(WithTokenTypes):
        def forward(self, input_ids, attention_mask):
            return getattr(self.inner(input_ids=input_ids, attention_mask=attention_mask), output)

    cls = WithTokenTypes if "token_type_ids" in names else WithoutTokenTypes
    return cls(model).eval()


def _output_name(kind: str) -> str:
    return "logits" if kind == "reranker" else "last_hidden_state"


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import torch
    from neural_compressor.torch.algorithms.pt2e_quant import save_load
    from neural_compressor.torch.export import export
    from neural_compressor.torch.quantization import convert, get_default_static_config, prepare
    from torch.export import Dim

    if not ctx.calibration:
        raise ValueError("inc-int8 needs calibration inputs")
    model = load_st(ctx, ctx.candidate.path, "torch")
    hf_model = model.transformers_model.eval()
    if ctx.candidate.kind == "embedder" and getattr(hf_model, "pooler", None) is not None:
        # sentence-transformers pools token embeddings itself; BERT's unused pooler leaves a dead
        # tanh in the graph, on which torchao's X86InductorQuantizer fails (IndexError).
        hf_model.pooler = None
    example = tokenize(model, ctx.calibration[:2], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    wrapped = _wrapper(hf_model, names, _output_name(ctx.candidate.kind))
    positions = getattr(hf_model.config, "max_position_embeddings", None) or max_length(model)
    batch, seq = Dim("batch", min=1, max=4096), Dim("seq", min=2, max=int(positions))
    with torch.no_grad():
        graph = export(wrapped, _inputs(example, names), dynamic_shapes=tuple({0: batch, 1: seq} for _ in names))
        prepared = prepare(graph, get_default_static_config())
        for start in range(0, len(ctx.calibration), CALIBRATION_BATCH):
            chunk = ctx.calibration[start : start + CALIBRATION_BATCH]
            prepared(*_inputs(tokenize(model, chunk, padding=True, return_tensors="pt"), names))
        quantized = convert(prepared)
    # The candidate's files (tokenizer, configs, modules, fp32 weights for the skeleton), then the graph.
    shutil.copytree(ctx.candidate.path, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git", "*.bin", "*.pt"))
    save_load.save(quantized, _inputs(example, names), str(out / GRAPH_DIR))
    return {"backend": "torch", "file_name": f"{GRAPH_DIR}/", "input_names": names, "calibration_samples": len(ctx.calibration)}


def load(ctx: BuildContext, artifact: Artifact):
    from neural_compressor.torch.algorithms.pt2e_quant import save_load

    names = artifact.load_info["input_names"]
    model = load_st(ctx, artifact.path, "torch")
    graph = save_load.load(str(artifact.path / GRAPH_DIR))
    _swap_transformer(model, graph, names, _output_name(ctx.candidate.kind))
    return model


def _swap_transformer(model, graph, names: list[str], output: str) -> None:
    """Route sentence-transformers' forward through the quantized graph."""
    import torch

    transformer = model[0]
    original = transformer.model

    class QuantizedTransformer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.graph = graph
            self.config = original.config

        def train(self, mode: bool = True):
            # An exported graph refuses train()/eval(); it is always in inference mode.
            self.training = mode
            return self

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, return_dict=True, **_):
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return {output: self.graph(*(given[n] for n in names))}

    transformer.model = QuantizedTransformer()
