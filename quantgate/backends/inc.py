"""Intel Neural Compressor 3.x int8 (`neural_compressor.torch.quantization`).

INC 3.x without IPEX quantizes through PT2E: the transformer is captured with
`neural_compressor.torch.export.export` (torch.export, dynamic batch and sequence),
`prepare` inserts observers for the default static config (X86InductorQuantizer, W8A8),
the calibration inputs run through it, and `convert` gives a quantize-dequantize graph.
The graph is saved as INC's PT2E `save_load` saves it (a torch.export archive + qconfig.json,
loaded back with `save_load.load`) in `inc/`, less the example inputs: torch.export pickles those
and its loader falls back to `weights_only=False` for them, so without them nothing is unpickled;
the artifact keeps the candidate's tokenizer, configs and modules so the loader
can put the quantized graph in place of the transformer inside sentence-transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from quantgate.backends import inc_graph
from quantgate.backends.common import BuildContext, cpu_only, estimate, load_st, max_length, release, tokenize
from quantgate.core.cache import Artifact
from quantgate.core.spec import VariantSpec
from quantgate.progress import bar

GRAPH_DIR = "inc"
WEIGHT_FILES = ("inc/*", "*.safetensors", "*.bin", "*.pt", "*.pt2")
skip_reason = cpu_only


def model_skip(spec: VariantSpec, model) -> str | None:
    """INC says nothing up front: the combinations its PT2E export cannot build at the pinned versions."""
    from quantgate.backends import support

    return support.known_reason(spec.id, model)


__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate"]


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    return {}  # eager PyTorch: torch's process-wide thread budget


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    """Build peaks measured for a 110M-parameter model, in fp32 weights over the run's baseline
    (docs/measurements.md): static int8 4.8, autotune 6.2 (the eager model, torch.export's graph, each
    trial's prepared and converted graphs); loaded 1.1 (the fp32 skeleton and the int8 graph)."""
    return estimate(spec, fp32_weight_bytes, build=6.5 if spec.opts.get("accuracy_control") else 5.0, load=1.5)
CALIBRATION_BATCH = 8


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    import torch
    from neural_compressor.torch.quantization import convert, get_default_static_config, prepare

    if not ctx.calibration:
        raise ValueError(f"{ctx.spec.id} needs calibration inputs")
    try:
        model, graph, names, example, calibrate = _export(ctx)
        extra: dict[str, Any] = {}
        with torch.no_grad():
            if ctx.spec.opts.get("accuracy_control") == "autotune":
                quantized, extra = _autotune(ctx, model, graph, names, example, calibrate)
            else:
                prepared = prepare(graph, get_default_static_config())
                calibrate(prepared)
                quantized = convert(prepared)
        # The candidate's files (tokenizer, configs, modules, fp32 weights for the skeleton), then the graph.
        shutil.copytree(ctx.candidate.path, out, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", "*.bin", "*.pt"))
        inc_graph.save(quantized, inc_graph.inputs(example, names), out / GRAPH_DIR)
        return {"backend": "torch", "file_name": f"{GRAPH_DIR}/", "input_names": names,
                "calibration_samples": len(ctx.calibration), **inc_graph.linear_precision(quantized), **extra}
    finally:
        inc_graph.forget_traced_graphs()


def _export(ctx: BuildContext):
    """The candidate's transformer captured by INC's export (dynamic batch and sequence), and a
    calibration function that runs the calibration inputs through a prepared graph."""
    import torch
    from neural_compressor.torch.export import export
    from torch.export import Dim

    model = load_st(ctx, ctx.candidate.path, "torch")
    hf_model = model.transformers_model.eval()
    if ctx.candidate.kind == "embedder" and getattr(hf_model, "pooler", None) is not None:
        # sentence-transformers pools token embeddings itself; BERT's unused pooler leaves a dead
        # tanh in the graph, on which torchao's X86InductorQuantizer fails (IndexError).
        hf_model.pooler = None
    example = tokenize(model, ctx.calibration[:2], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    wrapped = inc_graph.wrapper(hf_model, names, inc_graph.output_name(ctx.candidate.kind))
    positions = getattr(hf_model.config, "max_position_embeddings", None) or max_length(model)
    batch, seq = Dim("batch", min=1, max=4096), Dim("seq", min=2, max=int(positions))
    with torch.no_grad():
        graph = export(wrapped, inc_graph.inputs(example, names),
                       dynamic_shapes=tuple({0: batch, 1: seq} for _ in names))

    def calibrate(prepared) -> None:
        with torch.no_grad(), bar(len(ctx.calibration), f"{ctx.spec.id}: calibrating", "sample") as progress:
            for start in range(0, len(ctx.calibration), CALIBRATION_BATCH):
                chunk = ctx.calibration[start : start + CALIBRATION_BATCH]
                prepared(*inc_graph.inputs(tokenize(model, chunk, padding=True, return_tensors="pt"), names))
                progress.update(len(chunk))

    return model, graph, names, example, calibrate


def fallback_configs(linear_names: list[str]) -> list:
    """INC's static int8 tuning space first (every Linear in int8: the fastest), then more Linear
    layers kept in fp32, in order: the head, the FFN down-projections (GELU outliers feed them),
    the FFN up-projections, the attention output projections. Each step keeps the previous ones."""
    from neural_compressor.torch.quantization import StaticQuantConfig

    groups = [
        [n for n in linear_names if ".encoder." not in n],  # classifier / pooler head
        [n for n in linear_names if n.endswith(".output.dense") and ".attention." not in n],
        [n for n in linear_names if n.endswith(".intermediate.dense")],
        [n for n in linear_names if n.endswith(".attention.output.dense")],
    ]
    configs = [StaticQuantConfig(act_algo=["minmax", "kl"])]
    kept: list[str] = []
    for group in groups:
        if not group:
            continue
        kept = kept + group
        config = StaticQuantConfig()
        for name in kept:
            config.set_local(name, StaticQuantConfig(w_dtype="fp32", act_dtype="fp32"))
        configs.append(config)
    return configs


def _autotune(ctx: BuildContext, model, graph, names: list[str], example, calibrate):
    """INC autotune with the gate's limit and metric; the first configuration that meets the limit
    is the fastest that does (configurations are ordered by how much stays in int8)."""
    from neural_compressor.torch.quantization import TuningConfig, autotune

    tuning = ctx.tuning
    kind = ctx.candidate.kind
    output = inc_graph.output_name(kind)
    linear_names = [n.removeprefix("inner.") for n, m in graph.named_modules() if type(m).__name__ == "Linear"]
    if not linear_names:  # an exported graph keeps no modules: take the names from the eager model
        linear_names = [n for n, m in model.transformers_model.named_modules() if type(m).__name__ == "Linear"]
    configs = fallback_configs([f"inner.{n}" for n in linear_names])
    trials: list[dict[str, Any]] = []

    def evaluate(candidate_graph) -> float:
        if not trials:  # INC's first evaluation is its baseline, the float graph: the reference's cached validation
            value, _ = tuning.reference_quality()
            trials.append({"map": round(value, 6), "from": "the reference's validation scores"})
            return value
        inc_graph.swap_transformer(model, candidate_graph, names, output)
        value, _ = tuning.quality(model, kind)
        trials.append({"map": round(value, 6), **inc_graph.linear_precision(candidate_graph)})
        return value

    with bar(min(len(configs), tuning.max_trials) + 2, f"{ctx.spec.id}: autotune validations", "trial") as shown:
        def counted(candidate_graph) -> float:
            value = evaluate(candidate_graph)
            shown.set_postfix_str(f"MAP {value:.4f}", refresh=False)
            shown.update(1)
            return value

        quantized = autotune(graph, TuningConfig(config_set=configs, tolerable_loss=tuning.max_loss,
                                                 max_trials=tuning.max_trials),
                             eval_fn=counted, run_fn=calibrate, example_inputs=inc_graph.inputs(example, names))
        reference = trials[0]["map"]
        value = counted(quantized)
    return quantized, {"accuracy_control": tuning.summary(reference, value, tool="neural_compressor autotune",
                                                          trials=trials[1:-1])}


def load(ctx: BuildContext, artifact: Artifact):
    from neural_compressor.torch.algorithms.pt2e_quant import save_load

    names = artifact.load_info["input_names"]
    model = load_st(ctx, artifact.path, "torch")
    graph = save_load.load(str(artifact.path / GRAPH_DIR))
    inc_graph.swap_transformer(model, graph, names, inc_graph.output_name(ctx.candidate.kind))
    return model


# named in the run's header and verdict, and in every artifact's key
LIBRARIES = ("neural-compressor-pt",)

# this family's variants, in the matrix's order (quantgate.variants.registry concatenates the families')
VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec(
        "inc-int8",
        "inc",
        "int8",
        "Intel Neural Compressor 3.x static int8 (PT2E: torch.export + X86InductorQuantizer, "
        "W8A8 per-channel weights), calibrated on local calibration inputs; runs as INC's "
        "quantize-dequantize graph in eager PyTorch (torch.compile gave no speedup on a 2-core AVX-512 CPU "
        "and costs ~50 s per load)",
        (("approach", "static"),),
        calibrated=True,
    ),
    VariantSpec(
        "inc-int8-autotune",
        "inc",
        "int8",
        "Intel Neural Compressor 3.x autotune (TuningConfig, tolerable_loss = the quality limit): INC's "
        "static int8 tuning space, then more Linear layers kept in fp32, tried in order (fastest first) "
        "until the relative MAP loss on a held-out validation split is within the limit",
        (("approach", "static"), ("accuracy_control", "autotune")),
        calibrated=True,
        tuned=True,
    ),
)
# wall(variant) / the reference's unit in the project's cold default run: quantgate.variants.timeguard
TIME_MULTIPLES = {"inc-int8": 2.06, "inc-int8-autotune": 2.12}
