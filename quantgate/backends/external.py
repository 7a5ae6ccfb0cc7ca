"""Artifacts built elsewhere (`--gate-artifact NAME=PATH`): an ONNX file, an OpenVINO IR
(.xml with its .bin), or a sentence-transformers directory. Single files are placed beside
the candidate's tokenizer and configs, so they are loaded and gated exactly like a built
variant against the same reference."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from quantgate.backends import backend as family
from quantgate.backends.common import (
    BuildContext,
    builds_any,
    estimate,
    feed_position_ids,
    load_st,
    no_skip,
    release,
)
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec
from quantgate.errors import QuantgateUsageError

_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.onnx", "*.onnx_data", "onnx", "openvino", ".git")
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.onnx", "*.onnx_data", "*.xml")
skip_reason = no_skip  # what it runs on is the user's: an artifact that cannot run fails its build gate
model_skip = builds_any
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate"]


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    return {}  # per artifact: load() asks the family the artifact belongs to


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    """Copied, not built; loaded as an fp32 session at most (its precision is not known before)."""
    return estimate(spec, fp32_weight_bytes, build=0.0, load=1.8)


def source_kind(path: Path) -> str:
    """onnx | openvino | directory, or a QuantgateUsageError saying what is accepted."""
    if path.is_dir():
        return "directory"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".xml":
        if not path.with_suffix(".bin").is_file():
            raise QuantgateUsageError(f"OpenVINO IR {path} has no {path.with_suffix('.bin').name} beside it")
        return "openvino"
    raise QuantgateUsageError(f"--gate-artifact {path}: give an .onnx file, an OpenVINO .xml (with its .bin) "
                              "or a model directory")


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    source = Path(ctx.spec.opts["path"])
    kind = source_kind(source)
    if kind == "directory":
        shutil.copytree(source, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
        return _directory_load_info(out)
    shutil.copytree(ctx.candidate.path, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_WEIGHTS))
    if kind == "onnx":
        (out / "onnx").mkdir()
        shutil.copy2(source, out / "onnx" / "model.onnx")
        return {"backend": "onnx", "file_name": "onnx/model.onnx"}
    (out / "openvino").mkdir()
    shutil.copy2(source, out / "openvino" / "openvino_model.xml")
    shutil.copy2(source.with_suffix(".bin"), out / "openvino" / "openvino_model.bin")
    return {"backend": "openvino", "file_name": "openvino/openvino_model.xml"}


def _directory_load_info(out: Path) -> dict[str, Any]:
    onnx = sorted(out.glob("onnx/*.onnx"))
    xml = sorted(out.glob("openvino/*.xml"))
    if len(onnx) + len(xml) > 1:
        raise ValueError(f"{out} holds several model files ({[p.name for p in onnx + xml]}); point at one file")
    if onnx:
        return {"backend": "onnx", "file_name": onnx[0].relative_to(out).as_posix()}
    if xml:
        return {"backend": "openvino", "file_name": xml[0].relative_to(out).as_posix()}
    if (out / "model.safetensors").is_file():
        return {"backend": "torch", "file_name": "model.safetensors", "torch_dtype": None}
    raise ValueError(f"{out} has no onnx/*.onnx, openvino/*.xml or model.safetensors")


def load(ctx: BuildContext, artifact: Artifact):
    info = artifact.load_info
    if info["backend"] == "torch":
        return load_st(ctx, artifact.path, "torch")
    backend = info["backend"]
    model = load_st(ctx, artifact.path, backend, file_name=info["file_name"], **family(backend).runtime_options(ctx))
    return feed_position_ids(model)
