"""Scoring a loaded variant on evaluation inputs, the same way for every backend.

Rerankers: `predict(pairs)` after the model's own activation (sigmoid for one-logit cross-encoders).
Embedders: queries and documents encoded as deployed, with the prompts of their role, and the model's own
similarity of each query-passage pair (quantgate.evaluation.encoding). Scores are computed once per variant and
data set in a run and shared by every gate.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field

import numpy as np

from quantgate.evaluation import prepared
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.encoding import PLAIN, Encoding


class ScoreError(ValueError):
    """A variant produced unusable scores (NaN or inf)."""


@dataclass
class Scores:
    dataset: str
    keys: list[tuple[str, str]]  # (qid, docid) per score
    scores: np.ndarray  # float64, one per key
    texts: list[str] = field(default_factory=list)  # embedders: the encoded texts
    embeddings: np.ndarray | None = None  # embedders: one row per text, unit-normalised
    seconds: float = 0.0

    def head(self, pairs: int) -> Scores:
        """The first `pairs` scores (a variant scored in chunks is a prefix of the reference's order)."""
        return Scores(self.dataset, self.keys[:pairs], self.scores[:pairs], self.texts, self.embeddings, self.seconds)

    def arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickle): what save_scores writes."""
        qids, docids = (np.array([pair[i] for pair in self.keys], dtype=str) for i in (0, 1))
        arrays = {"qids": qids, "docids": docids, "scores": self.scores, "texts": np.array(self.texts, dtype=str),
                  "seconds": np.array(self.seconds), "dataset": np.array(self.dataset)}
        return arrays if self.embeddings is None else {**arrays, "embeddings": self.embeddings}

    def digest(self) -> str:
        """sha256 of what decides an answer: the pairs, their scores, the texts encoded and their embeddings."""
        return _digest(self.arrays())

    def by_query(self) -> dict[str, tuple[list[str], np.ndarray]]:
        groups: dict[str, list[int]] = {}
        for i, (qid, _) in enumerate(self.keys):
            groups.setdefault(qid, []).append(i)
        return {q: ([self.keys[i][1] for i in idx], self.scores[idx]) for q, idx in groups.items()}


def activated_scores(model, pairs: list[tuple[str, str]], batch_size: int, prompt: str = "") -> np.ndarray:
    """A reranker's score of each pair after its activation, float64 (the first output of a model with more).
    `prompt`: what CrossEncoder.predict prepends (Encoding.pair_prompt; "" sends none)."""
    return np.asarray(model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True,
                                    **({"prompt": prompt} if prompt else {})),
                      dtype=np.float64).reshape(len(pairs), -1)[:, 0]


def score(model, kind: str, dataset: EvalSet, batch_size: int = 32, top_k: int | None = None,
          max_queries: int | None = None, retrieval_queries: list[str] | None = None,
          qids: list[str] | None = None, known: Scores | None = None, order: list[str] | None = None,
          encoding: Encoding = PLAIN) -> Scores:
    """Scores of the candidate pairs of `qids` (default: every test query, or the first `max_queries`).
    Embedders with `retrieval_queries` (texts) also encode those queries and the whole corpus in the same
    pass, so full-corpus retrieval needs no second encoding pass (quantgate.evaluation.quality.evaluate_embeddings).
    With `known` (the scores of earlier chunks) only the new pairs are scored, texts already encoded are
    not encoded again, and the result holds both. `order`: the query order `qids` is a chunk of (default:
    `qids`); an embedder encodes each text in the same call whatever the chunks (`_text_blocks`). `encoding`: the
    prompts of each role and the similarity (quantgate.evaluation.encoding); texts are kept under its keys."""
    import time

    pairs = dataset.reranking_pairs(top_k=top_k, max_queries=max_queries, qids=qids)
    keys = [(qid, docid) for qid, docid, _, _ in pairs]
    started = time.perf_counter()
    if kind == "reranker":
        q_prefix, d_prefix = encoding.prompt("reranking", "query"), encoding.prompt("reranking", "document")
        items = [(q_prefix + q, d_prefix + p) for _, _, q, p in pairs]
        ends = _query_ends([qid for qid, _, _, _ in pairs])
        if prepared.applies(model):
            values = _prepared(model, [prepared.Call(items[s:e], s, encoding.pair_prompt or None)
                                       for s, e in zip([0, *ends], ends)], batch_size, "scores",
                               f"scoring {dataset.name}", "pair")
        else:
            values = _in_calls(lambda chunk: activated_scores(model, chunk, batch_size, encoding.pair_prompt),
                               items, ends, f"scoring {dataset.name}", "pair")
        result = Scores(dataset.name, keys, np.asarray(values, dtype=np.float64))
    else:
        inputs: dict[str, tuple[str, str, str]] = {}  # key -> (role, prompt, text)

        def keyed(task: str, role: str, texts) -> list[str]:
            out = [encoding.key(task, role, t) for t in texts]
            inputs.update((k, (role, encoding.prompt(task, role), t)) for k, t in zip(out, texts))
            return out

        query_keys = keyed("reranking", "query", [q for _, _, q, _ in pairs])
        doc_keys = keyed("reranking", "document", [p for _, _, _, p in pairs])
        needed = query_keys + doc_keys
        if retrieval_queries is not None:
            needed += keyed("retrieval", "query", retrieval_queries) + keyed("retrieval", "document",
                                                                             list(dataset.corpus.values()))
        seen = set(known.texts) if known is not None else set()
        plan = pairs if order is None else dataset.reranking_pairs(top_k=top_k, qids=order)
        canonical = [*keyed("reranking", "query", [q for _, _, q, _ in plan]),
                     *keyed("reranking", "document", [p for _, _, _, p in plan])]
        if retrieval_queries is not None:
            canonical += [*keyed("retrieval", "query", [dataset.queries[q] for q in dict.fromkeys(
                qid for qid, _, _, _ in plan)]), *keyed("retrieval", "document", list(dataset.corpus.values()))]
        new, ends = _text_blocks([t for t in dict.fromkeys(needed) if t not in seen], canonical, batch_size)
        if not new:
            emb = np.zeros((0, 1))
        elif prepared.applies(model):
            calls = [prepared.Call([inputs[k][2] for k in new[a + s:a + e]], a + s, prompt, kwargs)
                     for a, b in zip([0, *ends], ends) for s, e, prompt, kwargs in _runs(model, new[a:b], inputs,
                                                                                         encoding)]
            emb = np.asarray(_prepared(model, calls, batch_size, "sentence_embedding", f"encoding {dataset.name}",
                                       "text"), dtype=np.float64).reshape(len(new), -1)
        else:
            emb = np.asarray(_in_calls(lambda chunk: _encode(model, chunk, inputs, encoding, batch_size),
                                       new, ends, f"encoding {dataset.name}", "text"),
                             dtype=np.float64).reshape(len(new), -1)
        keep = [i for i, t in enumerate(new) if t not in seen]  # a block encoded whole may hold known texts
        if len(keep) < len(new):
            new, emb = [new[i] for i in keep], emb[keep]
        check_finite(emb, "embeddings")
        emb = encoding.prepare(emb)
        if known is not None and known.embeddings is not None:
            new, emb = [*known.texts, *new], np.vstack([known.embeddings, emb]) if len(new) else known.embeddings
        index = {t: i for i, t in enumerate(new)}
        values = encoding.pairwise(emb[[index[k] for k in query_keys]], emb[[index[k] for k in doc_keys]])
        result = Scores(dataset.name, keys, values, new, emb)
    result.seconds = time.perf_counter() - started
    check_finite(result.scores, "scores")
    if known is not None:
        result = Scores(dataset.name, known.keys + result.keys, np.concatenate([known.scores, result.scores]),
                        result.texts, result.embeddings, known.seconds + result.seconds)
    return result


def _encode(model, keys: list[str], inputs: dict[str, tuple[str, str, str]], encoding: Encoding,
            batch_size: int) -> np.ndarray:
    """One block of texts (by key): without prompts in one `encode` call; with them, each run of one role through
    `encode_query` / `encode_document` with that role's prompt, as deployed."""
    options = {"batch_size": batch_size, "show_progress_bar": False, "convert_to_numpy": True}
    parts = []
    for start, end, prompt, kwargs in _runs(model, keys, inputs, encoding):
        texts = [inputs[k][2] for k in keys[start:end]]
        if not encoding.prompted:
            parts.append(np.asarray(model.encode(texts, **options)))
        elif kwargs:
            parts.append(np.asarray(getattr(model, f"encode_{kwargs['task']}")(texts, prompt=prompt, **options)))
        else:
            parts.append(np.asarray(model.encode(texts, prompt=prompt, **options)))
    return np.concatenate(parts)


def _runs(model, keys: list[str], inputs: dict[str, tuple[str, str, str]], encoding: Encoding):
    """The library calls one block of texts makes: (start, end, prompt, keyword arguments) of each. Without prompts
    one `encode` (prompt None: the model's default, as encode resolves it); with them, each run of one role with its
    prompt and `task` (what `encode_query` / `encode_document` pass; a model without them gets `encode`)."""
    if not encoding.prompted:
        yield 0, len(keys), None, {}
        return
    start = 0
    while start < len(keys):
        role, prompt, _ = inputs[keys[start]]
        end = start
        while end < len(keys) and inputs[keys[end]][:2] == (role, prompt):
            end += 1
        yield start, end, prompt, {"task": role} if hasattr(model, f"encode_{role}") else {}
        start = end


def _prepared(model, calls: list, batch_size: int, output: str, desc: str, unit: str) -> np.ndarray:
    from quantgate.progress import bar

    with bar(sum(len(c.inputs) for c in calls), desc, unit) as progress:
        return prepared.run(model, calls, batch_size, output, progress.update)


# how scores are batched: kept scores made otherwise are not reused
SCORING = "rerankers: one call per query; embedders: fixed blocks of the whole order's texts"
CHUNK_BATCHES = 16  # batches per predict()/encode() call: the progress bar moves at least this often


def _in_calls(call, items: list, ends: list[int], desc: str, unit: str) -> np.ndarray:
    """`call` on the consecutive slices of `items` that end at `ends`, with a progress bar for long passes."""
    from quantgate.progress import bar

    if not items:
        return np.zeros(0)
    parts, start = [], 0
    with bar(len(items), desc, unit) as progress:
        for end in ends:
            parts.append(np.asarray(call(items[start:end])))
            progress.update(end - start)
            start = end
    return np.concatenate(parts)


def _block_ends(count: int, batch_size: int) -> list[int]:
    """`count` texts in calls of whole batches (encode's length sort runs within each call)."""
    step = batch_size * CHUNK_BATCHES
    return [min(end, count) for end in range(step, count + step, step)]


def _text_blocks(needed: list[str], canonical: list[str], batch_size: int) -> tuple[list[str], list[int]]:
    """The texts an embedder encodes for `needed` and where its calls end. Every text of the whole order
    (`canonical`: the plan's queries, then its passages, then the rest of the corpus) has one fixed block of whole
    batches, and a chunk encodes the whole blocks it needs, so a text's batch mates are the same in the sequential
    looks' chunks as in one pass. Dynamic int8 takes each activation's range from the batch it is in: encoded in
    blocks of each chunk's new texts, the tiny embedder's onnx-qint8-avx2 cosines moved by up to 5e-3 between the
    two. Texts outside the plan come last, in blocks of their own."""
    canonical = list(dict.fromkeys(canonical))
    place = {t: i for i, t in enumerate(canonical)}
    step = batch_size * CHUNK_BATCHES
    wanted = sorted({place[t] // step for t in needed if t in place})
    blocks = [canonical[b * step:(b + 1) * step] for b in wanted]
    rest = [t for t in needed if t not in place]
    texts = [t for block in blocks for t in block]
    ends = [*np.cumsum([len(block) for block in blocks]), *(len(texts) + e for e in _block_ends(len(rest), batch_size))]
    return texts + rest, [int(e) for e in ends]


def _query_ends(qids: list[str]) -> list[int]:
    """A reranker's pairs one query per call, as in production, so a pair's batch mates (CrossEncoder.predict sorts
    each call by length) are its own query's candidates, whatever else is scored in the same pass. Dynamic int8 takes
    each activation's range from the batch it is in: with 512-pair calls the shared reranker's onnx-qint8-avx2 lost
    -0.49% MAP on scifact scored in the sequential looks' chunks and -1.91% scored in one pass (opposite decisions);
    per query, the chunks of the looks change no score."""
    return [i for i in range(1, len(qids)) if qids[i] != qids[i - 1]] + [len(qids)]


def save_scores(result: Scores, path) -> None:
    """Plain arrays in an .npz (no pickle) with their sha256, written beside the target and renamed into place."""
    from pathlib import Path

    from quantgate.core.cache import atomic_target

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    arrays = {**result.arrays(), "sha256": np.array(result.digest())}
    with atomic_target(Path(path)) as tmp:
        np.savez(tmp, **arrays)


def _digest(arrays) -> str:
    """sha256 over every array that decides an answer (not the timing), name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in ("qids", "docids", "scores", "texts", "embeddings", "dataset"):
        if name in arrays:
            value = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def cached_scores(path) -> tuple[Scores | None, str | None]:
    """Scores saved by save_scores: (scores, None) when intact; (None, why) when the file cannot be read or its
    arrays do not match their sha256 (then they are computed again, and the caller says so); (None, None) when
    there is no file."""
    from pathlib import Path

    if not Path(path).is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return None, f"unreadable ({type(err).__name__})"
    if "sha256" not in arrays or str(arrays["sha256"]) != _digest(arrays):
        return None, "its arrays do not match their sha256" if "sha256" in arrays else "saved without a sha256"
    try:
        keys = list(zip(arrays["qids"].tolist(), arrays["docids"].tolist()))
        result = Scores(str(arrays["dataset"]), keys, arrays["scores"].astype(np.float64), arrays["texts"].tolist(),
                        arrays.get("embeddings"), float(arrays["seconds"]))
    except (KeyError, ValueError, TypeError) as err:
        return None, f"not a scores file ({type(err).__name__}: {err})"
    if not np.isfinite(result.scores).all():
        return None, "it holds non-finite scores"
    return result, None


def load_scores(path) -> Scores | None:
    """Saved scores, or None when the file is absent, unreadable or altered (then they are computed again)."""
    return cached_scores(path)[0]


def check_finite(values: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        raise ScoreError(
            f"{what} contain {n_nan} NaN and {n_inf} inf of {values.size} values: the variant is numerically broken "
            "(overflow in fp16? a bad export?); it cannot be gated"
        )
