"""OpenVINO GenAI pipelines (`ovgenai`, `ovgenai-int8-wo`, `ovgenai-int4-wo`): the engine a team serves an OpenVINO
IR with, gated as it runs. Embedders go through `TextEmbeddingPipeline` (pooling and normalisation set from the
candidate's own modules, the run's query / document prompts as its `query_instruction` / `embed_instruction`),
rerankers through `TextRerankPipeline` (its own sigmoid). Both run the IR of `openvino` (f32 weights) or of a
weight-only variant with the tokenizer converted by openvino-tokenizers: the pipeline's own tokenization, pooling
and instruction handling are what is judged, against the torch reference like any variant.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from quantgate.backends.common import BuildContext, copy_artifact, estimate, query_runs, release
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec

RUNTIME = "openvino-genai"
WEIGHT_FILES = ("*.xml", "*.bin")
POOLING = {"pooling_mode_mean_tokens": "MEAN", "pooling_mode_cls_token": "CLS", "pooling_mode_lasttoken": "LAST_TOKEN"}
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate", "RUNTIME", "runtime_facts", "ran_with"]


def skip_reason(spec: VariantSpec, device: str) -> str | None:
    if device == "cuda":
        return f"{spec.id} runs on the CPU only (--gate-device cuda)"
    import importlib.util

    if importlib.util.find_spec("openvino_genai") is None:  # found, not imported: collection loads no runtime
        return f"{spec.id} needs openvino-genai (pip install openvino-genai at the installed OpenVINO's version)"
    return None


def model_skip(spec: VariantSpec, model) -> str | None:
    """What the pipelines cannot run, decided from the candidate's files: an embedder whose modules are more than
    Transformer, Pooling (mean, CLS or last token) and Normalize; a causal-LM reranker (a yes/no logit head)."""
    path = Path(model.path) if getattr(model, "path", "") else None
    if model.task == "text-generation":
        return f"{spec.id}: TextRerankPipeline scores sequence classifiers; this reranker is a causal LM's yes/no logit"
    if model.task == "sequence-classification" and path is not None and \
            _json(path / "config_sentence_transformers.json").get("default_prompt_name"):
        return f"{spec.id}: TextRerankPipeline takes no prompt; this reranker applies a default prompt"
    if model.task != "feature-extraction" or path is None:
        return None
    modules = _json(path / "modules.json")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules] if isinstance(modules, list) else []
    extra = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if extra:
        return (f"{spec.id}: TextEmbeddingPipeline runs a transformer, pooling and normalisation; this model adds "
                f"{', '.join(extra)}")
    pooling = _pooling(path, modules)
    if pooling is None:
        return (f"{spec.id}: TextEmbeddingPipeline pools by mean, CLS or last token, prompt tokens included; this "
                "model pools otherwise")
    return None


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    return {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": str(ctx.threads)} if ctx.threads else {})}


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    return estimate(spec, fp32_weight_bytes, build=2.0, load=1.8)  # a copy of the IR and its compiled model


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    """The source variant's IR at the folder's top (where the pipelines look) and the tokenizer converted."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    assert ctx.dependency is not None, f"{ctx.spec.id} runs the IR of `{ctx.spec.depends_on}`"
    copy_artifact(ctx.dependency.path, out)
    xml = out / ctx.dependency.load_info["file_name"]
    for suffix in (".xml", ".bin"):
        shutil.move(xml.with_suffix(suffix), out / f"openvino_model{suffix}")
    shutil.rmtree(out / "openvino", ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(out), trust_remote_code=ctx.candidate.trust_remote_code)
    pairs = 2 if ctx.candidate.kind == "reranker" else 1
    ov.save_model(convert_tokenizer(tokenizer, with_detokenizer=False, number_of_inputs=pairs),
                  str(out / "openvino_tokenizer.xml"))
    # the truncation length the candidate runs with: its sentence_bert_config.json, else its tokenizer's
    limit = _json(ctx.candidate.path / "sentence_bert_config.json").get("max_seq_length") or \
        (tokenizer.model_max_length if tokenizer.model_max_length < 1_000_000 else None)
    info: dict[str, Any] = {"backend": "ovgenai", "file_name": "openvino_model.xml", "max_length": limit,
                            "pipeline": "TextRerankPipeline" if pairs == 2 else "TextEmbeddingPipeline",
                            "ir_of": ctx.spec.depends_on, **{k: v for k, v in ctx.dependency.load_info.items()
                                                             if k in ("weights", "activations")}}
    if pairs == 1:
        modules = _json(out / "modules.json")
        info.update({"pooling": _pooling(out, modules), "normalize": any(
            str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict)),
            "padding_side": getattr(tokenizer, "padding_side", "right")})
    return info


def load(ctx: BuildContext, artifact: Artifact):
    info = artifact.load_info
    config = runtime_options(ctx)
    if info["pipeline"] == "TextRerankPipeline":
        return Reranker(artifact.path, info, config)
    return Embedder(artifact.path, info, config)


def runtime_facts(model) -> dict[str, Any] | None:
    if not isinstance(model, (Embedder, Reranker)):
        return None
    return {"runtime": RUNTIME, "pipeline": model.pipeline_name, "inference_precision": "f32"}


def ran_with(runtime: dict[str, Any]) -> str:
    return f"OpenVINO GenAI {runtime['pipeline']}"


class Embedder:
    """TextEmbeddingPipeline behind sentence-transformers' encode / encode_query / encode_document: one pipeline
    per pair of instructions (the run's prompts), compiled on first use."""

    pipeline_name = "TextEmbeddingPipeline"

    def __init__(self, path: Path, info: dict[str, Any], config: dict[str, str]):
        self.path, self.info, self.config = path, info, config
        self._pipelines: dict[tuple[str, str], Any] = {}

    def _pipeline(self, query: str = "", document: str = ""):
        import openvino_genai as genai

        if (query, document) not in self._pipelines:
            kind = genai.TextEmbeddingPipeline
            settings = {"pooling_type": getattr(kind.PoolingType, self.info["pooling"]),
                        "normalize": bool(self.info["normalize"]), "padding_side": self.info["padding_side"]}
            if self.info.get("max_length"):
                settings["max_length"] = int(self.info["max_length"])
            if query:
                settings["query_instruction"] = query
            if document:
                settings["embed_instruction"] = document
            self._pipelines[(query, document)] = kind(str(self.path), "CPU", kind.Config(**settings), **self.config)
        return self._pipelines[(query, document)]

    def encode(self, texts, batch_size: int = 32, prompt: str | None = None, **_: Any) -> np.ndarray:
        return self.encode_document(texts, batch_size=batch_size, prompt=prompt)

    def encode_query(self, texts, batch_size: int = 32, prompt: str | None = None, **_: Any) -> np.ndarray:
        return self._embed(self._pipeline(query=prompt or "").embed_query, texts, batch_size, one=True)

    def encode_document(self, texts, batch_size: int = 32, prompt: str | None = None, **_: Any) -> np.ndarray:
        return self._embed(self._pipeline(document=prompt or "").embed_documents, texts, batch_size)

    @staticmethod
    def _embed(call, texts, batch_size: int, one: bool = False) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if one:  # embed_query takes one text
            return np.asarray([call(t) for t in texts], dtype=np.float32).reshape(len(texts), -1)
        rows = [np.asarray(call(texts[i:i + batch_size]), dtype=np.float32) for i in range(0, len(texts), batch_size)]
        return np.concatenate(rows) if rows else np.zeros((0, 1), dtype=np.float32)


class Reranker:
    """TextRerankPipeline behind CrossEncoder.predict: each query's candidates in one rerank call, the scores put
    back in the pairs' order (the pipeline returns them best first, after its sigmoid)."""

    pipeline_name = "TextRerankPipeline"

    def __init__(self, path: Path, info: dict[str, Any], config: dict[str, str]):
        import openvino_genai as genai

        settings = genai.TextRerankPipeline.Config()
        settings.top_n = 1_000_000  # every candidate back, not the best few
        if info.get("max_length"):
            settings.max_length = int(info["max_length"])
        self.pipeline = genai.TextRerankPipeline(str(path), "CPU", settings, **config)

    def predict(self, pairs, batch_size: int = 32, prompt: str | None = None, **_: Any) -> np.ndarray:
        if prompt:
            raise ValueError("TextRerankPipeline takes no prompt: a reranker with a default prompt is not gated here")
        pairs = [tuple(p) for p in pairs]
        scores = np.zeros(len(pairs), dtype=np.float32)
        for start, end in query_runs(pairs):
            for index, value in self.pipeline.rerank(pairs[start][0], [d for _, d in pairs[start:end]]):
                scores[start + index] = value
        return scores


def _pooling(path: Path, modules) -> str | None:
    folder = next((m.get("path", "") for m in modules if isinstance(m, dict)
                   and str(m.get("type", "")).endswith("Pooling")), None) if isinstance(modules, list) else None
    config = _json(path / folder / "config.json") if folder else {}
    if config.get("include_prompt") is False:  # the pipeline pools its instruction's tokens with the text's
        return None
    if isinstance(config.get("pooling_mode"), str):  # sentence-transformers 5.x saves one mode by name
        return POOLING.get(f"pooling_mode_{config['pooling_mode']}".replace("_mean", "_mean_tokens")
                           .replace("_cls", "_cls_token"))
    chosen = [mode for mode, on in config.items() if on is True and mode.startswith("pooling_mode")]
    return POOLING.get(chosen[0]) if len(chosen) == 1 else None


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _ovgenai(source: str) -> VariantSpec:
    weights = source.removeprefix("openvino").removeprefix("-") or "f32"
    return VariantSpec(
        id="ovgenai" + source.removeprefix("openvino"),
        family="ovgenai",
        precision=weights if weights != "f32" else "fp32",
        description=f"OpenVINO GenAI's TextEmbeddingPipeline (embedders) or TextRerankPipeline (rerankers) over the "
                    f"`{source}` IR ({weights} weights) and its tokenizer converted by openvino-tokenizers: the "
                    "engine's own tokenization, pooling and instructions",
        depends_on=source,
        default=False,
    )


# this family's variants, in the matrix's order (quantgate.variants.registry concatenates the families')
VARIANTS: tuple[VariantSpec, ...] = (
    *(_ovgenai(source) for source in ("openvino", "openvino-int8-wo", "openvino-int4-wo")),
)
