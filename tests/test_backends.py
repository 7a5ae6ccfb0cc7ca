"""One builder per backend family, on tiny in-test models of both kinds."""

import numpy as np
import pytest

from quantgate.core.cache import ArtifactCache
from quantgate.core.candidate import resolve
from quantgate.evaluation.data import calibration_inputs, default_data
from quantgate.evaluation.scoring import score
from quantgate.variants.factory import BuildError, VariantFactory
from quantgate.variants.registry import VARIANTS, Registry, VariantSpec

FAMILY_SAMPLES = ["torch-fp16", "onnx-O2", "onnx-qint8-avx2", "openvino-qint8", "inc-int8"]


def _factory(path, cache_dir, registry=None):
    candidate = resolve(path)
    data = default_data()
    return VariantFactory(
        candidate,
        (registry or Registry()).variants,
        ArtifactCache(cache_dir),
        calibration=lambda: calibration_inputs([data], candidate.kind, n=16),
    ), data


@pytest.mark.parametrize("model", ["tiny_reranker", "tiny_embedder"])
def test_one_builder_per_family_builds_loads_and_scores(request, model, tmp_path):
    factory, data = _factory(request.getfixturevalue(model), tmp_path / "cache")
    kind = factory.candidate.kind
    reference = score(factory.load(VARIANTS["torch-fp32"]), kind, data, top_k=4, max_queries=3)
    for vid in FAMILY_SAMPLES:
        artifact = factory.artifact(VARIANTS[vid])
        assert artifact.built
        info = artifact.load_info
        assert (artifact.path / info["file_name"]).exists(), f"{vid}: {info}"
        result = score(factory.load(VARIANTS[vid]), kind, data, top_k=4, max_queries=3)
        assert result.keys == reference.keys
        assert np.isfinite(result.scores).all()
        # a working variant of a random tiny model still tracks its reference
        assert np.corrcoef(result.scores, reference.scores)[0, 1] > 0.5, vid
    # each derived ONNX artifact keeps only its own file
    assert sorted(p.name for p in (factory.artifact(VARIANTS["onnx-O2"]).path / "onnx").iterdir()) == ["model_O2.onnx"]
    assert factory.artifact(VARIANTS["onnx-qint8-avx2"]).load_info["file_name"] == "onnx/model_quint8_avx2.onnx"


def test_warm_factory_builds_nothing(tiny_reranker, tmp_path):
    cold, _ = _factory(tiny_reranker, tmp_path / "cache")
    for vid in ("onnx", "onnx-O1", "openvino"):
        cold.artifact(VARIANTS[vid])
    warm, _ = _factory(tiny_reranker, tmp_path / "cache")
    for vid in ("onnx", "onnx-O1", "openvino"):
        warm.artifact(VARIANTS[vid])
    assert cold.built_count() == 3 and warm.built_count() == 0


def test_external_onnx_file_is_gated_like_a_built_variant(tiny_embedder, tmp_path):
    factory, data = _factory(tiny_embedder, tmp_path / "cache")
    onnx_file = factory.artifact(VARIANTS["onnx"]).path / "onnx" / "model.onnx"
    registry = Registry()
    registry.register(VariantSpec("theirs", "external", "fp32", "theirs", (("path", str(onnx_file)),)))
    factory, _ = _factory(tiny_embedder, tmp_path / "cache", registry)
    ours = score(factory.load(VARIANTS["onnx"]), "embedder", data, top_k=4, max_queries=3)
    theirs = score(factory.load(registry.variants["theirs"]), "embedder", data, top_k=4, max_queries=3)
    np.testing.assert_allclose(theirs.scores, ours.scores, atol=1e-6)


def test_a_failing_build_is_a_build_error_not_a_skip(tiny_reranker, tmp_path):
    registry = Registry()
    registry.register(VariantSpec("broken", "onnx", "fp32", "bad level", (("optimize", "O9"),), depends_on="onnx"))
    factory, _ = _factory(tiny_reranker, tmp_path / "cache", registry)
    with pytest.raises(BuildError, match="broken failed to build"):
        factory.artifact(registry.variants["broken"])
    assert not list((tmp_path / "cache").glob("broken-*"))


def test_cuda_only_variant_is_skipped_with_its_reason(tiny_reranker, tmp_path):
    from quantgate.core import machine

    factory, _ = _factory(tiny_reranker, tmp_path / "cache")
    why = factory.skip_reason(VARIANTS["onnx-O4"])
    assert (why is None) == machine.has_cuda()
    if why:
        assert "CUDA" in why


def test_an_external_openvino_ir_is_identified_by_its_bin_too(tmp_path):
    """The weights of an IR are its .bin: replacing them makes another artifact (another cache key), never the
    cached one gated again."""
    from quantgate.session.settings import external_spec

    (tmp_path / "model.xml").write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(b"weights one")
    first = external_spec("ov", str(tmp_path / "model.xml"))
    (tmp_path / "model.bin").write_bytes(b"weights two")
    second = external_spec("ov", str(tmp_path / "model.xml"))
    assert first.key_material() != second.key_material()


@pytest.mark.parametrize("model", ["tiny_reranker", "tiny_embedder"])
def test_weight_only_variants_store_compressed_weights_and_float_activations(request, model, tmp_path):
    """openvino-int8-wo / openvino-int4-wo (NNCF compress_weights) and onnx-int4-wo (MatMulNBits): what each holds is
    read back from the artifact (the tiny models' 32-wide layers take NNCF's adjusted int4 groups), and each still
    tracks its reference."""
    factory, data = _factory(request.getfixturevalue(model), tmp_path / "cache")
    kind = factory.candidate.kind
    reference = score(factory.load(VARIANTS["torch-fp32"]), kind, data, top_k=4, max_queries=3)
    infos = {}
    for vid in ("openvino-int8-wo", "openvino-int4-wo", "onnx-int4-wo"):
        infos[vid] = info = factory.artifact(VARIANTS[vid]).load_info
        assert info["weights"] == vid.split("-")[1] and info["activations"] in ("f32", "float"), info
        result = score(factory.load(VARIANTS[vid]), kind, data, top_k=4, max_queries=3)
        assert result.keys == reference.keys and np.isfinite(result.scores).all()
        assert not np.array_equal(result.scores, reference.scores), f"{vid} computed the reference's numbers"
        assert np.corrcoef(result.scores, reference.scores)[0, 1] > 0.5, vid
    assert infos["openvino-int8-wo"]["ops_int8"] == 0  # activations stay float: no FakeQuantize
    assert infos["openvino-int8-wo"]["ops_float_int8_weights"] == infos["openvino-int8-wo"]["ops"] > 0  # every MatMul
    assert infos["openvino-int4-wo"].get("weights_u4", 0) + infos["openvino-int4-wo"].get("weights_i4", 0) > 0
    assert infos["onnx-int4-wo"]["ops_matmul_nbits"] > 0


@pytest.mark.parametrize("model", ["tiny_reranker", "tiny_embedder"])
def test_openvino_genai_pipelines_score_like_the_ir_they_run(request, model, tmp_path):
    """ovgenai runs the `openvino` IR through TextEmbeddingPipeline / TextRerankPipeline with its own converted
    tokenizer, pooling and sigmoid: on f32 weights its scores are the IR's within float noise; a prompt reaches the
    embedder as the pipeline's instruction, as sentence-transformers prepends it."""
    from quantgate.evaluation.encoding import Encoding

    factory, data = _factory(request.getfixturevalue(model), tmp_path / "cache")
    kind = factory.candidate.kind
    ir = score(factory.load(VARIANTS["openvino"]), kind, data, top_k=4, max_queries=3)
    engine = score(factory.load(VARIANTS["ovgenai"]), kind, data, top_k=4, max_queries=3)
    assert factory.runtime["ovgenai"]["runtime"] == "openvino-genai"
    assert engine.keys == ir.keys and np.abs(engine.scores - ir.scores).max() < 1e-4
    if kind == "embedder":
        prompted = Encoding("--gate-prompts", (("reranking", "query", "query: "), ("reranking", "document", "doc: ")))
        theirs = score(factory.load(VARIANTS["openvino"]), kind, data, top_k=4, max_queries=3, encoding=prompted)
        ours = score(factory.load(VARIANTS["ovgenai"]), kind, data, top_k=4, max_queries=3, encoding=prompted)
        assert np.abs(ours.scores - theirs.scores).max() < 1e-4 and np.abs(ours.scores - ir.scores).max() > 1e-4
