"""What Intel Neural Compressor's PT2E path works on: the transformer wrapped for torch.export, a quantized graph's
int8 linear layers counted, saved without pickled inputs, swapped into sentence-transformers, and the traced graphs
PT2E leaves behind dropped (quantgate.backends.inc builds and loads with these)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def inputs(encoded, names: list[str]) -> tuple:
    return tuple(encoded[n] for n in names)


def wrapper(model, names: list[str], output: str):
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


def output_name(kind: str) -> str:
    return "logits" if kind == "reranker" else "last_hidden_state"


def forget_traced_graphs() -> None:
    """Drop what PT2E tracing keeps after a build. Module-level caches keep the traced graphs, and with them
    a copy of the weights: measured here, 0.4-0.9 GB stayed after each INC build of a 110M model (0.42 GB
    of live parameters after inc-int8; none after this). They are `functools.cache`s keyed by module
    (torchao.utils and torch.ao.quantization.fx.utils, each `..._get_unique_device`), proxy_tensor's
    fake-tensor-to-node map for export, and the compiled function dynamo leaves in
    torch._dynamo.functional_export's globals."""
    import sys

    import torch

    for module, name in (("torchao.utils", "_assert_and_get_unique_device"),
                         ("torch.ao.quantization.fx.utils", "assert_and_get_unique_device")):
        cached = getattr(sys.modules.get(module), name, None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    proxy = sys.modules.get("torch.fx.experimental.proxy_tensor")
    if isinstance(getattr(proxy, "_FAKE_TENSOR_ID_TO_PROXY_MAP_FOR_EXPORT", None), dict):
        proxy._FAKE_TENSOR_ID_TO_PROXY_MAP_FOR_EXPORT.clear()
    export = sys.modules.get("torch._dynamo.functional_export")
    for name in [n for n in vars(export) if n.startswith(("___unnamed_scope_", "__compiled_fn_"))] if export else []:
        del vars(export)[name]
    torch._dynamo.reset()


def linear_precision(graph) -> dict[str, Any]:
    """How many linear layers of a PT2E graph run in int8 (their weight is dequantized from int8)."""
    linears = [n for n in graph.graph.nodes if n.op == "call_function" and "linear" in str(n.target)]

    def int8(node) -> bool:
        weight = node.args[1] if len(node.args) > 1 else None
        return (weight is not None and getattr(weight, "op", "") == "call_function"
                and "dequantize" in str(weight.target))

    quantized = sum(1 for n in linears if int8(n))
    return {"op_type": "linear", "ops": len(linears), "ops_int8": quantized, "ops_float": len(linears) - quantized}


def save(quantized, example_inputs: tuple, directory: Path) -> None:
    """INC's `save_load.save` (its public `save()` is broken for PT2E in 3.10), with no pickled
    example inputs in the archive: the tensors are raw bytes described by JSON."""
    import json

    import torch
    from neural_compressor.torch.utils import QCONFIG_NAME, WEIGHT_NAME

    from quantgate.core.cache import write_text_atomic

    directory.mkdir(parents=True, exist_ok=True)
    program = torch.export.export(quantized, example_inputs, dynamic_shapes=quantized.dynamic_shapes)
    program.example_inputs = None
    torch.export.save(program, directory / WEIGHT_NAME)
    qconfig = {str(name): config.to_dict() for name, config in quantized.qconfig.items()}
    write_text_atomic(directory / QCONFIG_NAME, json.dumps(qconfig, indent=2))


def swap_transformer(model, graph, names: list[str], output: str) -> None:
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
