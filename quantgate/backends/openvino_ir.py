"""What is inside an OpenVINO IR after NNCF: which MatMuls run in int8 (recorded with every int8 variant) and
whether the accuracy restorer left a SmoothQuant-scaled activation in front of an original weight (refused)."""

from __future__ import annotations

from typing import Any


def _reaches(node, found, through: tuple[str, ...], hops: int) -> bool:
    """Whether `node`, or a node upstream of it along `through` ops within `hops` steps, is `found`."""
    return found(node) or (hops > 0 and node.get_type_name() in through
                           and any(_reaches(v.get_node(), found, through, hops - 1) for v in node.input_values()))


def op_precision(model) -> dict[str, Any]:
    """How many MatMuls run in int8 (an input comes through a FakeQuantize), how many in float, and of
    those how many keep int8 weights (decompressed to float at run time)."""
    def fake_quantize(node) -> bool:
        return node.get_type_name() == "FakeQuantize"

    def int8(node) -> bool:
        return fake_quantize(node) or (node.get_type_name() == "Constant"
                                       and node.get_element_type().get_type_name() in ("i8", "u8"))

    matmuls = [op for op in model.get_ops() if op.get_type_name() == "MatMul"]
    floats = [op for op in matmuls
              if not any(_reaches(v.get_node(), fake_quantize, ("Reshape", "Transpose", "Convert"), 3)
                         for v in op.input_values())]
    weights = ("Multiply", "Subtract", "Convert", "Reshape", "Transpose")
    return {"op_type": "MatMul", "ops": len(matmuls), "ops_int8": len(matmuls) - len(floats), "ops_float": len(floats),
            "ops_float_int8_weights": sum(1 for op in floats
                                          if _reaches(op.input_value(1).get_node(), int8, weights, 4))}


def check_smoothing(quantized, original) -> None:
    """Refuse a model in which a MatMul takes a SmoothQuant-scaled activation but the original,
    unscaled float weight (what NNCF's restorer leaves when it reverts weights to the original)."""
    import numpy as np

    weights = {op.get_friendly_name(): op.input_value(1).get_node() for op in original.get_ops()
               if op.get_type_name() == "MatMul"}
    for op in quantized.get_ops():
        if op.get_type_name() != "MatMul" or op.get_friendly_name() not in weights:
            continue
        activation, weight = op.input_value(0).get_node(), op.input_value(1).get_node()
        before = weights[op.get_friendly_name()]
        if ("nncf_smooth_quant" in activation.get_friendly_name() and weight.get_type_name() == "Constant"
                and before.get_type_name() == "Constant"
                and np.array_equal(weight.get_data(), before.get_data())):
            raise RuntimeError(
                f"{op.get_friendly_name()}: SmoothQuant scales its input but its weight is the original "
                "one (an operation reverted to float with its weights restored): the model is wrong")
