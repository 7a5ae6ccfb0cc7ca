"""Shared fixtures of the project's own tests: tiny in-test models, the real shared assets."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RERANKER = SHARED / "models" / "minilm-l6-scifact-reranker"
SCIFACT = SHARED / "data" / "scifact"
TREC_DL19 = SHARED / "data" / "trec-dl19"


def thresholds_file(folder: Path, limits: dict[str, float] | None = None, **control: int) -> Path:
    """The project's thresholds.toml with [accuracy_control] values replaced and per-variant MAP limits."""
    import re

    text = (ROOT / "thresholds.toml").read_text()
    for key, value in control.items():
        text, n = re.subn(rf"^{key} = \d+", f"{key} = {value}", text, flags=re.MULTILINE)
        assert n == 1, key
    for variant, limit in (limits or {}).items():
        text += f'\n[variants."{variant}".quality]\nreranking_map_max_loss = {limit}\n'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "thresholds.toml"
    path.write_text(text)
    return path


SHARED_FIXTURES = {"shared_reranker", "scifact", "trec_dl19"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`shared` on every test that uses ../shared (through a fixture, at any depth): CI runs `-m "not slow"` on a
    fresh machine without it, then `-m "slow or shared"` beside it, so each test runs once (.ci/run)."""
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared models and data live beside the project in ../shared)")
    return path


@pytest.fixture(scope="session")
def shared_reranker() -> Path:
    return need(RERANKER)


@pytest.fixture(scope="session")
def scifact() -> Path:
    return need(SCIFACT)


@pytest.fixture(scope="session")
def trec_dl19() -> Path:
    return need(TREC_DL19)


@pytest.fixture(scope="session")
def embedder_path() -> Path:
    from quantgate.core.candidate import default_candidate_path

    return default_candidate_path()


def _tiny_bert(tmp: Path, head: str) -> Path:
    """A 2-layer, 32-wide BERT with the all-MiniLM tokenizer: a real model, built in a second."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    from quantgate.core.candidate import default_candidate_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(default_candidate_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1,
                        initializer_range=0.3)
    model = BertForSequenceClassification(config) if head == "classification" else BertModel(config)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(tmp)
    return tmp


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory) -> Path:
    """A bare *ForSequenceClassification checkpoint (the pre-5.x cross-encoder format)."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-reranker"), "classification")


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory) -> Path:
    """A sentence-transformers directory (Transformer + mean Pooling) around a tiny BERT."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    bert = _tiny_bert(tmp_path_factory.mktemp("tiny-bert"), "base")
    out = tmp_path_factory.mktemp("tiny-embedder")
    transformer = Transformer(str(bert), max_seq_length=64)
    SentenceTransformer(modules=[transformer, Pooling(32, "mean")]).save(str(out))
    return out


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def native_libraries():
    """pytester's in-process runs drop the modules they imported when they end; torch and the runtimes' native
    extensions cannot be imported a second time in one process ("SystemError: bad call flags"), so they are
    imported here, before the first run, and kept. `onnx` is one: ONNX exports import it, and a second import of its
    nanobind extension aborts the process ("refusing to add duplicate key"), killing every test after it."""
    import importlib

    for name in ("torch", "transformers", "sentence_transformers", "onnxruntime", "openvino", "optimum.onnxruntime",
                 "optimum.intel", "mteb", "datasets", "pytrec_eval", "onnx", "faiss",
                 "optimum.intel.openvino"):
        importlib.import_module(name)


def pytest_sessionfinish() -> None:
    from tests import forked

    forked.stop()
