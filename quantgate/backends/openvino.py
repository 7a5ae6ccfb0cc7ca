"""OpenVINO variants: the optimum-intel IR export and NNCF static int8.

Static int8 runs optimum-intel's OVQuantizer (NNCF post-training quantization) with
calibration inputs from the local train split -- not sentence-transformers'
`export_static_quantized_openvino_model`, which downloads glue/sst2 from the hub and
calibrates a reranker on single sentences.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from quantgate.backends.common import BuildContext, copy_artifact, load_st, remove_files, runtime_kwargs, tokenize
from quantgate.cache import Artifact

PLAIN = "openvino/openvino_model.xml"
QINT8 = "openvino/openvino_model_qint8_quantized.xml"


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    if ctx.spec.opts.get("quantize") != "static":
        model = load_st(ctx, ctx.candidate.path, "openvino", export=True)
        model.save(str(out))
        if not (out / PLAIN).is_file():
            raise RuntimeError(f"the OpenVINO export wrote no {PLAIN} in {out}")
        return {"backend": "openvino", "file_name": PLAIN}
    return _build_static_int8(ctx, out)


def _build_static_int8(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import nncf
    from optimum.intel import OVConfig, OVQuantizationConfig, OVQuantizer

    if not ctx.calibration:
        raise ValueError("openvino-qint8 needs calibration inputs")
    assert ctx.dependency is not None, "openvino-qint8 is built from the `openvino` artifact"
    copy_artifact(ctx.dependency.path, out)
    model = load_st(ctx, out, "openvino", file_name=PLAIN, ov_config=ov_config(ctx))
    ov_model = model.transformers_model
    input_names = set(ov_model.input_names)
    encoded = tokenize(model, ctx.calibration, padding=True, return_tensors="np")
    samples = [
        {name: encoded[name][i : i + 1] for name in encoded if name in input_names} for i in range(len(ctx.calibration))
    ]
    # Each sample is one unpadded sequence, as at inference with batch 1.
    samples = [{k: v[:, : int(s["attention_mask"].sum())] for k, v in s.items()} for s in samples]
    config = OVConfig(quantization_config=OVQuantizationConfig(num_samples=len(samples)))
    quantizer = OVQuantizer.from_pretrained(ov_model)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        quantizer.quantize(nncf.Dataset(samples), save_directory=tmp, ov_config=config)
        xml = next(Path(tmp).rglob("openvino_model.xml"))
        remove_files(out / "openvino", ["openvino_model.xml", "openvino_model.bin"])
        shutil.move(xml, out / QINT8)
        shutil.move(xml.with_suffix(".bin"), (out / QINT8).with_suffix(".bin"))
    return {"backend": "openvino", "file_name": QINT8, "calibration_samples": len(samples)}


def ov_config(ctx: BuildContext) -> dict[str, str]:
    """OpenVINO's CPU plugin computes in bf16 by default on CPUs with AVX512-BF16/AMX: pin the
    precision the variant is named for, so `openvino` is fp32 on every machine."""
    config = {"INFERENCE_PRECISION_HINT": ctx.spec.opts.get("inference_precision", "f32")}
    return {**config, **runtime_kwargs(ctx, "openvino").get("ov_config", {})}


def load(ctx: BuildContext, artifact: Artifact):
    return load_st(ctx, artifact.path, "openvino", file_name=artifact.load_info["file_name"], ov_config=ov_config(ctx))
