"""Stored embedding formats (quantgate.evaluation.formats, gates/test_stored_formats.py): the indexes search as
sentence-transformers defines each format, the gate fails a format stored with the wrong ranges, refuses a dimension
the model does not have, and runs no inference of its own."""

import json
from pathlib import Path

import numpy as np
import pytest

from quantgate.config import ThresholdsError, load_thresholds
from quantgate.core import formats as format_ids
from quantgate.evaluation import formats
from quantgate.publish import _bind_ranges, formats_card
from tests.conftest import ROOT, thresholds_file

pytest_plugins = ["pytester"]


def _clustered(seed: int = 0, n: int = 600, dim: int = 48, queries: int = 40):
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(30, dim))
    corpus = topics[rng.integers(0, 30, n)] + rng.normal(size=(n, dim)) * 0.9
    picked = rng.integers(0, n, queries)
    query = corpus[picked] + rng.normal(size=(queries, dim)) * 0.6
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    return unit(query), unit(corpus), picked


def test_format_ids_parse_and_the_wrong_ones_say_what_is_allowed():
    f = format_ids.parse("dim256-int8-rescore")
    assert (f.precision, f.rescore, f.dim) == ("int8", True, 256)
    parse = format_ids.parse
    assert parse("dim128").precision == "float32" and parse("binary").bytes_per_vector(384) == 48
    assert parse("int8").bytes_per_vector(384) == 384 and parse("dim64").bytes_per_vector(384) == 256
    for bad, said in (("int4", "PRECISION one of"), ("float32-rescore", "rescored by nothing"), ("dim0", "dimN")):
        with pytest.raises(ValueError, match=said):
            format_ids.parse(bad)
    assert format_ids.parse_list("none") == []
    assert [f.id for f in format_ids.parse_list("default")] == format_ids.DEFAULT_FORMATS.split(",")
    with pytest.raises(formats.QuantgateUsageError, match="has 384 dimensions"):
        format_ids.check_dimensions([format_ids.parse("dim512")], 384, "m")


def test_each_index_returns_what_the_format_defines():
    """faiss answers as the definitions: float32 inner product, int8 codes' inner product, Hamming on the sign bits,
    and rescoring as sentence-transformers' semantic_search_faiss (compared with it directly for binary)."""
    from sentence_transformers.util.quantization import quantize_embeddings, semantic_search_faiss

    query, corpus = (m.astype(np.float32) for m in _clustered()[:2])  # the index quantizes float32 vectors
    ranges = formats.calibration_ranges(corpus[:300], format_ids.parse("int8"))
    expected = {
        "float32": query @ corpus.T,
        "int8": quantize_embeddings(query, "int8", ranges=ranges).astype(np.int64)
        @ quantize_embeddings(corpus, "int8", ranges=ranges).astype(np.int64).T,
        "binary": -((query[:, None, :] > 0) != (corpus[None, :, :] > 0)).sum(-1),
    }
    for fid, scores in expected.items():
        index = formats.StoredIndex(corpus, format_ids.parse(fid), ranges if fid == "int8" else None, 4)
        rows, got = index.search(query)
        assert np.allclose(np.sort(got, axis=1), np.sort(np.sort(scores, axis=1)[:, ::-1][:, :10], axis=1),
                           atol=1e-4), fid
        assert np.allclose(np.take_along_axis(scores, rows, 1), got, atol=1e-4), fid
    rows, _ = formats.StoredIndex(corpus, format_ids.parse("binary-rescore"), None, 4).search(query)
    hits, _ = semantic_search_faiss(query.astype(np.float32), corpus_embeddings=quantize_embeddings(corpus, "ubinary"),
                                    corpus_precision="ubinary", top_k=10, rescore=True, rescore_multiplier=4)
    assert rows.tolist() == [[h["corpus_id"] for h in hit] for hit in hits]


def test_an_index_holds_the_bytes_its_format_stores():
    _, corpus, _ = _clustered(n=1000, dim=64)
    for fid in ("float32", "int8", "uint8", "binary", "dim32-int8"):
        fmt = format_ids.parse(fid)
        ranges = formats.calibration_ranges(corpus, fmt) if fmt.calibrated else None
        stored = formats.StoredIndex(corpus, fmt, ranges, 4).index_bytes
        payload = 1000 * fmt.bytes_per_vector(64)
        assert payload <= stored <= payload + 4096, (fid, stored, payload)  # the vectors and a header, nothing more


def test_rescoring_recovers_what_binary_search_loses():
    query, corpus, picked = _clustered(seed=1)
    qids, doc_ids = [f"q{i}" for i in range(len(query))], [f"d{i}" for i in range(len(corpus))]
    qrels = {q: {doc_ids[j]: 1} for q, j in zip(qids, picked)}
    ndcg = {fid: formats.evaluate(format_ids.parse(fid), query, qids, corpus, doc_ids, qrels, None, 4)[0].ndcg_at_10
            for fid in ("float32", "binary", "binary-rescore", "dim8")}
    assert ndcg["binary"] < ndcg["binary-rescore"] <= ndcg["float32"] + 1e-9, ndcg
    assert ndcg["dim8"] < ndcg["float32"], ndcg  # 8 of 48 dimensions lose most of the signal


def test_format_limits_compose_and_a_wrong_key_is_one_line(tmp_path):
    limits = load_thresholds(ROOT / "thresholds.toml")
    loss = limits.embedding_formats["max_loss"]
    assert limits.format_limit(format_ids.parse("dim256-int8")) == pytest.approx(loss["int8"] + loss["truncation"])
    assert limits.format_limit(format_ids.parse("binary-rescore")) == loss["binary-rescore"]
    bad = tmp_path / "t.toml"
    bad.write_text("[embedding_formats.max_loss]\nint4 = 0.1\n")
    with pytest.raises(ThresholdsError, match="int4.*not a stored format"):
        load_thresholds(bad)


# -- the gate, in-process on the embedded embedder and data (reference only: seconds) --------------------------------

@pytest.fixture(scope="module", autouse=True)
def libraries_loaded_once(native_libraries):
    """See tests.conftest.native_libraries."""


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("formats-cache")


def _gate(pytester, cache: Path, *args: str):
    if "--gate-thresholds" not in args:  # the embedded set's 12 queries decide a large loss under min_queries 5
        args = ("--gate-thresholds", str(thresholds_file(pytester.path / "limits", min_queries=5)), *args)
    return pytester.runpytest_inprocess("--pyargs", "quantgate.gates", "-k", "stored_format", "--variants",
                                        "torch-fp32", "--gate-cache", str(cache), "--gate-report", "report",
                                        "--gate-history", "history", "--benchmark-storage",
                                        f"file://{pytester.path / 'bench'}", *args)


def _other_model_ranges(tmp: Path, embedder_path: Path, texts: list[str]) -> Path:
    """The int8 ranges of another 384-dimensional model (random weights) over the same passages."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(1)
    tokenizer = AutoTokenizer.from_pretrained(str(embedder_path))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=384, num_hidden_layers=2, num_attention_heads=6,
                        intermediate_size=512, max_position_embeddings=128)
    BertModel(config).save_pretrained(tmp / "bert")
    tokenizer.save_pretrained(tmp / "bert")
    model = SentenceTransformer(modules=[Transformer(str(tmp / "bert"), max_seq_length=64), Pooling(384, "mean")])
    path = tmp / "other-model-ranges.npy"
    np.save(path, formats.calibration_ranges(model.encode(texts, normalize_embeddings=True), format_ids.parse("int8")))
    return path


def _scifact_subset(source: Path, out: Path, others: int = 400) -> Path:
    """scifact's 300 test queries over a smaller corpus (their relevant passages, the train split's and `others`
    more): full-corpus retrieval that int8 ranges matter to. 400 others instead of 1,200 decide the same (the wrong
    ranges fail at +4.7%) in 104 s instead of 198 s on the AVX2-only 2-core EPYC."""
    import random
    import shutil

    keep = set()
    for split in ("test", "train"):
        for line in (source / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
            keep.add(line.split("\t")[1])
    lines = [line for line in (source / "corpus.jsonl").read_text().splitlines() if line.strip()]
    rest = [line for line in lines if json.loads(line)["_id"] not in keep]
    keep |= {json.loads(line)["_id"] for line in random.Random(0).sample(rest, others)}
    (out / "qrels").mkdir(parents=True)
    (out / "corpus.jsonl").write_text("\n".join(line for line in lines if json.loads(line)["_id"] in keep) + "\n")
    for name in ("queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"):
        shutil.copyfile(source / name, out / name)
    candidates = [json.loads(line) for line in (source / "candidates.jsonl").read_text().splitlines() if line.strip()]
    with open(out / "candidates.jsonl", "w") as fh:
        for row in candidates:
            fh.write(json.dumps({**row, "candidates": [c for c in row["candidates"] if c["docid"] in keep]}) + "\n")
    return out


def test_int8_stored_on_the_gated_data_is_recorded_with_its_ranges(pytester, cache):
    _gate(pytester, cache, "--gate-embedding-formats", "float32,int8,binary-rescore")
    verdict = json.loads((pytester.path / "report" / "verdict.json").read_text())
    stored = verdict["variants"]["torch-fp32"]["formats"]
    assert set(stored) == {"float32", "int8", "binary-rescore"}
    assert stored["float32"]["decision"] == "pass"
    ranges_file = Path(stored["int8"]["datasets"][0]["calibration"]["ranges_file"])
    assert ranges_file.is_file() and np.load(ranges_file).shape == (2, 384)
    assert "## Stored formats" in (pytester.path / "report" / "summary.md").read_text()
    # publish: the passed formats go into the card, their ranges files beside the weights; a changed file is refused
    passed = [f for f, p in stored.items() if p["decision"] == "pass"]
    card, files = formats_card(verdict, ["torch-fp32"]), {}
    assert all(f"| `torch-fp32` | {f} |" in card for f in passed) and "int8" in passed, (passed, card)
    assert _bind_ranges(verdict, ["torch-fp32"], files) == []
    assert files == {f"quantgate/stored-formats/torch-fp32/{ranges_file.name}": ranges_file}
    np.save(ranges_file, np.load(ranges_file) * 2)
    assert "changed since it was gated" in _bind_ranges(verdict, ["torch-fp32"], {})[0]


@pytest.mark.slow
def test_the_gate_fails_int8_stored_with_another_models_ranges(pytester, cache, embedder_path, scifact, tmp_path):
    """With its own ranges, int8-rescore keeps the embedded embedder's NDCG@10 on scifact (measured -0.2% on the whole
    corpus); with a random-weight model's ranges the buckets are 8x too narrow and it loses ~4% (docs/measurements.md;
    on the subset here 4.7%, one-sided bounds [+2.5%, +6.9%] against 1.55%): the gate fails it, and the network's own
    decision is untouched."""
    data = _scifact_subset(scifact, tmp_path / "scifact-subset")
    args = ("--gate-data", str(data), "--gate-embedding-formats", "int8-rescore")
    right = _gate(pytester, cache, *args, "--gate-thresholds", str(ROOT / "thresholds.toml"))
    verdict = json.loads((pytester.path / "report" / "verdict.json").read_text())
    assert verdict["variants"]["torch-fp32"]["formats"]["int8-rescore"]["decision"] == "pass", right.outlines[-20:]
    texts = [json.loads(line)["text"] for line in (data / "corpus.jsonl").read_text().splitlines()[:500]]
    wrong = _gate(pytester, cache, *args, "--gate-thresholds", str(ROOT / "thresholds.toml"),
                  "--gate-embedding-ranges", str(_other_model_ranges(tmp_path, embedder_path, texts)))
    verdict = json.loads((pytester.path / "report" / "verdict.json").read_text())
    record = verdict["variants"]["torch-fp32"]["formats"]["int8-rescore"]
    assert record["decision"] == "fail", record["datasets"][0]["decisions"]
    assert wrong.ret == 1 and any("torch-fp32@int8-rescore" in line for line in wrong.outlines
                                  if line.startswith("FAILED"))
    assert verdict["variants"]["torch-fp32"]["decision"] == "pass"  # the network's own decision stands


def test_a_dimension_the_model_lacks_is_one_usage_error(pytester, cache):
    result = _gate(pytester, cache, "--gate-embedding-formats", "dim512")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = [line for line in result.outlines + result.errlines if "dim512" in line]
    assert said and "has 384 dimensions" in said[0], result.outlines[-10:]


def test_stored_formats_run_no_inference(pytester, tmp_path, monkeypatch):
    """The same run with and without formats encodes exactly as often: formats reuse the scoring pass."""
    from sentence_transformers import SentenceTransformer

    calls = []
    original = SentenceTransformer.encode
    monkeypatch.setattr(SentenceTransformer, "encode", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    counts = {}
    for chosen in ("none", "float32,int8-rescore,binary,dim128-int8"):
        calls.clear()
        result = _gate(pytester, tmp_path / f"cache-{len(counts)}", "--gate-embedding-formats", chosen, "-k",
                       "stored_format or quality")
        assert result.ret in (0, 1), result.outlines[-10:]
        counts[chosen] = len(calls)
    assert counts["none"] > 0 and len(set(counts.values())) == 1, counts


TOY_FORMAT = '''
"""float16 vectors in a flat inner-product index: a stored precision declared outside the package."""
import numpy as np

from quantgate.core.formats import Precision, register_precision

register_precision(Precision("float16", 16, "flat", max_loss=0.0155, rescore_max_loss=None,
                             encode=lambda vectors, ranges: np.asarray(vectors, np.float16).astype(np.float32)))
'''


def test_a_stored_precision_registered_by_a_plugin_module_is_judged_end_to_end(pytester, cache):
    """One declaration and one call (quantgate.core.formats.register_precision) in a team's own module, loaded as a
    plugin (`-p toy_format`: before the options are read, so --gate-embedding-formats knows its ids): its ids parse,
    its index is built and searched, its limit is its own, its row reaches the verdict and summary.md."""
    pytester.makepyfile(toy_format=TOY_FORMAT)
    pytester.syspathinsert()
    try:
        result = _gate(pytester, cache, "-p", "toy_format", "--gate-embedding-formats", "float16,dim128-float16")
        with pytest.raises(ValueError, match="float16 vectors are rescored by nothing"):
            format_ids.parse("float16-rescore")
    finally:
        format_ids.PRECISIONS.pop("float16", None)
    verdict = json.loads((pytester.path / "report" / "verdict.json").read_text())
    stored = verdict["variants"]["torch-fp32"]["formats"]
    assert set(stored) == {"float16", "dim128-float16"}, result.outlines[-20:]
    full, cut = stored["float16"]["datasets"][0], stored["dim128-float16"]["datasets"][0]
    assert full["bytes_per_vector"] == 384 * 2 and cut["bytes_per_vector"] == 128 * 2
    assert stored["float16"]["decision"] == "pass"  # float16 rounding of unit vectors costs no NDCG@10
    assert abs(full["decisions"][0]["loss"]) < 1e-3 and full["decisions"][0]["limit"] == pytest.approx(0.0155)
    assert "float16" in (pytester.path / "report" / "summary.md").read_text()
    assert "float16" not in format_ids.PRECISIONS
