"""OpenVINO weight-only compression (`openvino-int8-wo`, `openvino-int4-wo`): what teams publish for 0.5B+ decoder
embedders and rerankers (Qwen3-Embedding, Qwen3-Reranker, EmbeddingGemma IRs on the hub). NNCF's
`compress_weights` through optimum-intel's OVQuantizer and OVWeightQuantizationConfig, on the plain `openvino` IR:
MatMul and embedding weights stored in int8 (per channel, asymmetric) or int4 (groups of 128, asymmetric, every
layer NNCF's ratio allows, the rest int8), decompressed to f32 at run time; activations stay f32. Data-free: no
calibration input.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, copy_artifact, load_st, remove_files
from quantgate.backends.openvino_ir import op_precision

FILES = {8: "openvino/openvino_model_int8_wo.xml", 4: "openvino/openvino_model_int4_wo.xml"}
GROUP_SIZE = 128  # optimum-intel's default int4 config (_DEFAULT_4BIT_WQ_CONFIG); smaller widths: adjusted


def config(bits: int) -> dict[str, Any]:
    """OVWeightQuantizationConfig's arguments: int8 per channel; int4 in groups (a layer whose width the group
    does not divide gets the largest power of two that does: NNCF's group_size_fallback "adjust")."""
    if bits == 8:
        return {"bits": 8, "sym": False}
    return {"bits": 4, "sym": False, "group_size": GROUP_SIZE, "ratio": 1.0, "group_size_fallback": "adjust"}


def build(ctx: BuildContext, out: Path, plain: str, ov_config: dict[str, str]) -> dict[str, Any]:
    import openvino as ov
    from optimum.intel import OVConfig, OVQuantizer, OVWeightQuantizationConfig

    bits = int(ctx.spec.opts["bits"])
    assert ctx.dependency is not None, f"{ctx.spec.id} is built from the `openvino` artifact"
    copy_artifact(ctx.dependency.path, out)
    model = load_st(ctx, out, "openvino", file_name=plain, ov_config=ov_config)
    settings = config(bits)
    quantizer = OVQuantizer.from_pretrained(model.transformers_model)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        quantizer.quantize(save_directory=tmp,
                           ov_config=OVConfig(quantization_config=OVWeightQuantizationConfig(**settings)))
        xml = next(Path(tmp).rglob("openvino_model.xml"))
        remove_files(out / "openvino", ["openvino_model.xml", "openvino_model.bin"])
        shutil.move(xml, out / FILES[bits])
        shutil.move(xml.with_suffix(".bin"), (out / FILES[bits]).with_suffix(".bin"))
    ir = ov.Core().read_model(out / FILES[bits])
    precision = {**op_precision(ir), **weight_types(ir)}
    if not precision["ops_float_int8_weights"] and not precision.get("weights_i4", 0) + precision.get("weights_u4", 0):
        raise RuntimeError(f"NNCF compressed no weight of {ctx.spec.id}: the IR holds only float weights")
    return {"backend": "openvino", "file_name": FILES[bits], "weights": f"int{bits}", "activations": "f32",
            "weight_compression": settings, **precision}


def weight_types(ir) -> dict[str, int]:
    """How many weight constants of each integer type the IR stores (read back: int4 layers are u4/i4, the layers
    NNCF keeps in its backup precision u8/i8)."""
    counts: dict[str, int] = {}
    for op in ir.get_ops():
        if op.get_type_name() == "Constant":
            name = op.get_element_type().get_type_name()
            if name in ("u4", "i4", "u8", "i8"):
                counts[f"weights_{name}"] = counts.get(f"weights_{name}", 0) + 1
    return counts
