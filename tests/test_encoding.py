"""The gate encodes as the model is deployed: each role's prompt (the model's, as mteb applies them, or a team's),
and the model's own similarity."""

import json
import shutil

import numpy as np
import pytest

from quantgate.config import ThresholdsError, load_thresholds
from quantgate.evaluation.encoding import PromptsError, parse_prompts, resolve
from tests.conftest import ROOT

# E5-style role prompts, and a retrieval-only query instruction (mteb's "Retrieval-query" key wins for Retrieval)
PROMPTS = {"query": "query: ", "document": "passage: ",
           "Retrieval-query": "Instruct: Given a claim, retrieve passages that support it\nQuery: "}


def _with_config(src, dst, **config):
    shutil.copytree(src, dst)
    path = dst / "config_sentence_transformers.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**data, **config}))
    return dst


@pytest.fixture(scope="module")
def prompted_embedder(tmp_path_factory, embedder_path):
    """The embedded default (all-MiniLM-L6-v2, real weights) declaring prompts, as EmbeddingGemma or E5 do."""
    return _with_config(embedder_path, tmp_path_factory.mktemp("prompted") / "model", prompts=PROMPTS)


def test_prompts_are_parsed_with_commas_newlines_and_none():
    assert parse_prompts("query=Given a query, find passages: ,document=doc: ") == {
        "query": "Given a query, find passages: ", "document": "doc: "}
    assert parse_prompts("document=x\\ny") == {"document": "x\ny"}
    assert parse_prompts("none") == {}
    for bad in ("quer=x", "text", "query=a,query=b"):
        with pytest.raises(PromptsError):
            parse_prompts(bad)


def test_thresholds_prompts_table(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[prompts]\nquery = "query: "\ndocument = ""\n')
    assert load_thresholds(good).prompts == {"query": "query: ", "document": ""}
    assert load_thresholds(ROOT / "thresholds.toml").prompts is None
    for text in ('[prompts]\nquery = 3\n', '[prompts]\npassage = "p: "\n'):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ThresholdsError, match="prompts"):
            load_thresholds(bad)


def test_prompts_resolve_as_mteb_then_sentence_transformers(tmp_path):
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"prompts": PROMPTS}))
    enc = resolve(tmp_path, "embedder", None, None)
    assert enc.prompt("retrieval", "query") == PROMPTS["Retrieval-query"]  # task type + role, mteb's order
    assert enc.prompt("reranking", "query") == "query: " and enc.prompt("retrieval", "document") == "passage: "
    assert enc.source == "the model's config" and enc.prompted
    # no "document" key: encode_document's own fallbacks ("passage"), then default_prompt_name
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "q: ", "passage": "p: ", "x": "x: "}, "default_prompt_name": "x"}))
    enc = resolve(tmp_path, "embedder", None, None)
    assert (enc.prompt("reranking", "query"), enc.prompt("reranking", "document")) == ("q: ", "p: ")
    # a reranker: CrossEncoder.predict applies default_prompt_name itself
    assert resolve(tmp_path, "reranker", None, None).pair_prompt == "x: "
    # a team's prompts replace the model's for every task; none sends nothing, and says the model had some
    team = resolve(tmp_path, "embedder", {"query": "Q "}, "--gate-prompts")
    roles = [team.prompt(t, r) for t in ("reranking", "retrieval") for r in ("query", "document")]
    assert roles == ["Q ", "", "Q ", ""]
    assert resolve(tmp_path, "embedder", {}, "--gate-prompts").ignores_declared()
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps({"similarity_fn_name": "cosine_ish"}))
    with pytest.raises(PromptsError, match="similarity_fn_name"):
        resolve(tmp_path, "embedder", None, None)


def _gate(tmp_path, candidate, **settings):
    from quantgate.session.core import GateSession, GateSettings

    gate = GateSession(GateSettings(candidate=str(candidate), cache_dir=str(tmp_path / "cache"), device="cpu",
                                    thresholds=str(ROOT / "thresholds.toml"), variants=("torch-fp32",),
                                    report_dir=str(tmp_path / "report"), **settings))
    gate.resolve()
    return gate


def test_a_prompted_reference_equals_mteb_and_differs_from_no_prompts(tmp_path, prompted_embedder):
    """The gate's reference MAP (reranking) and NDCG@10 (retrieval) on a local folder are mteb's own evaluation of
    the same model on the same data, prompts applied per task type; and the prompts change the scores."""
    import mteb

    from quantgate.evaluation import quality

    gate = _gate(tmp_path, prompted_embedder)
    ref, dataset = gate.context.reference, gate.context.datasets[0]
    header = gate.run.verdict.header["encoding"]
    assert header["source"] == "the model's config" and header["prompts"]["retrieval"]["query"].startswith("Instruct")
    plain = _gate(tmp_path / "plain", prompted_embedder, prompts=())
    from quantgate.reporting.summary import summary_markdown

    assert "**The model declares prompts (query, document, Retrieval-query) that this run did not send.**" in \
        summary_markdown(plain.run.verdict.to_dict(True))
    reranking = gate.evaluator.quality_of(ref, dataset, "reranking")
    retrieval = gate.evaluator.quality_of(ref, dataset, "retrieval")
    groups = gate.store.scores(ref, dataset).by_query()
    qids = sorted(reranking.per_query["map"])
    model = gate.factory.load(ref)
    task = quality.build_task(dataset, qids, {q: groups[q][0] for q in qids})
    theirs = mteb.evaluate(model, task, cache=None, show_progress_bar=False,
                           encode_kwargs={"batch_size": 32}).task_results[0].scores["test"][0]
    assert theirs["map_at_1000"] == pytest.approx(reranking.scores["map"], abs=1e-4)
    mteb_retrieval = quality.evaluate_model(dataset, model, gate.context.order(dataset), 32)
    assert mteb_retrieval.scores["ndcg_at_10"] == pytest.approx(retrieval.scores["ndcg_at_10"], abs=1e-4)

    assert plain.run.verdict.header["encoding"]["source"] == "--gate-prompts"
    with_prompts, without = gate.store.scores(ref, dataset), plain.store.scores(ref, dataset)
    assert with_prompts.keys == without.keys and np.abs(with_prompts.scores - without.scores).max() > 1e-3


def test_the_embedded_default_takes_a_teams_prompts(tmp_path, embedder_path):
    """all-MiniLM-L6-v2 declares no prompts: --gate-prompts sends them, the scores move, the verdict says which."""
    gate = _gate(tmp_path, embedder_path, prompts=(("query", "query: "), ("document", "passage: ")))
    plain = _gate(tmp_path / "plain", embedder_path)
    assert gate.run.verdict.header["encoding"]["prompts"]["reranking"] == {"query": "query: ", "document": "passage: "}
    assert plain.run.verdict.header["encoding"] == {"source": "none", "similarity": "cosine", "prompts": {
        t: {"query": "", "document": ""} for t in ("reranking", "retrieval")}}
    from quantgate.reporting.summary import summary_markdown

    said = summary_markdown(gate.run.verdict.to_dict(True))
    assert "Inputs: reranking: query 'query: ', document 'passage: '" in said
    assert "Inputs: no prompts (none); similarity cosine." in summary_markdown(plain.run.verdict.to_dict(True))
    dataset = gate.context.datasets[0]
    ours, theirs = gate.store.scores(gate.context.reference, dataset), plain.store.scores(plain.context.reference,
                                                                                           dataset)
    assert np.abs(ours.scores - theirs.scores).max() > 1e-3


def test_a_dot_product_model_is_ranked_by_dot_product(tmp_path, tiny_embedder):
    """similarity_fn_name "dot": pair scores are the dot products of the model's own (unnormalised) vectors, and
    retrieval ranks the corpus by them; stored formats (unit vectors) skip with the reason."""
    dot = _with_config(tiny_embedder, tmp_path / "dot", similarity_fn_name="dot")
    gate = _gate(tmp_path, dot)
    assert gate.context.encoding.similarity == "dot"
    ref, dataset = gate.context.reference, gate.context.datasets[0]
    scores = gate.store.scores(ref, dataset)
    model = gate.factory.load(ref)
    qid, docid = scores.keys[0]
    q, d = model.encode([dataset.queries[qid], dataset.corpus[docid]], convert_to_numpy=True).astype(np.float64)
    assert np.linalg.norm(q) != pytest.approx(1.0, abs=1e-3)  # unnormalised: cosine and dot differ
    assert scores.scores[0] == pytest.approx(float(q @ d), rel=1e-5)
    assert scores.scores[0] != pytest.approx(float(q @ d / np.linalg.norm(q) / np.linalg.norm(d)), rel=1e-3)
    retrieval = gate.evaluator.quality_of(ref, dataset, "retrieval")
    from quantgate.evaluation.quality import evaluate_model

    assert evaluate_model(dataset, model, gate.context.order(dataset), 32).scores["ndcg_at_10"] == pytest.approx(
        retrieval.scores["ndcg_at_10"], abs=1e-4)  # mteb searches with model.similarity: dot
