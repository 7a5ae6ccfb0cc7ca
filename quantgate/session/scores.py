"""The score store: every variant's scores in a gate run — the reference's shared through the cache, a variant's
extended chunk by chunk for sequential decisions, the baseline's and accuracy control's validation scores kept
across runs. It reads the run's context, loads models through the variant factory (made on first use: `models`)
and keeps what it scored in the run's memo (`GateRun.scores`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from quantgate.core.cache import cache_key, write_json_atomic
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.encoding import Encoding
from quantgate.evaluation.quality import evaluate_scores
from quantgate.evaluation.scoring import SCORING, Scores, cached_scores, save_scores, score
from quantgate.results.run import GateRun
from quantgate.session.context import GateContext
from quantgate.speed.bench import machine_key
from quantgate.variants.factory import VariantFactory
from quantgate.variants.registry import REFERENCE_ID, VariantSpec, backend_of


class ScoreStore:
    def __init__(self, context: GateContext, run: GateRun, models: Callable[[], VariantFactory]) -> None:
        self.context = context
        self.run = run
        self.models = models

    def load(self, spec: VariantSpec):
        """The variant's loaded model (built or taken from the cache on first use)."""
        return self.models().load(spec)

    @property
    def cache(self):
        """The artifact cache the factory builds into; scores are kept beside the artifacts, under its locks."""
        return self.models().cache

    def scores(self, spec: VariantSpec, dataset: EvalSet) -> Scores:
        """Scores of one variant on the whole evaluation order of a data set, computed once per run (the
        reference's from the cache). Variants under a sequential decision use `score_more`."""
        key = (spec.id, dataset.name)
        memo = self.run.scores
        if key not in memo or len(memo[key].by_query()) < len(self.context.order(dataset)):
            if spec.id == REFERENCE_ID:  # shared by every worker and shard on this cache: computed once
                memo[key] = self._shared_reference(spec, dataset)
            else:
                memo[key] = self._score(spec, dataset, self.context.order(dataset))
            self._timed(spec, dataset, memo[key])
        return memo[key]

    def score_more(self, spec: VariantSpec, dataset: EvalSet, qids: list[str], known: Scores | None) -> Scores:
        """The scores of `known` and of the pairs of `qids` (the next chunk of the evaluation order)."""
        result = self._score(spec, dataset, qids, known)
        self.run.scores[(spec.id, dataset.name)] = result
        self._timed(spec, dataset, result)
        return result

    def stored_vectors(self, spec: VariantSpec, dataset: EvalSet) -> tuple[list[str], np.ndarray, list[str],
                                                                           np.ndarray] | None:
        """(qids, query vectors, doc ids, corpus vectors) from the variant's scoring pass this run: the queries it
        scored and the whole corpus, with retrieval's prompts, unit-length float64 (a cosine model's); None when the
        pass encoded no corpus (a reranker, no retrieval, or retrieval left to mteb's wrapper on a folder without
        candidate lists)."""
        scores = self.scores(spec, dataset) if spec.id == REFERENCE_ID else self.run.scores.get((spec.id, dataset.name))
        if scores is None or scores.embeddings is None or not dataset.candidates or not self.context.settings.retrieval:
            return None
        rows = {t: i for i, t in enumerate(scores.texts)}
        key = self.context.encoding.key
        if any(key("retrieval", "document", text) not in rows for text in dataset.corpus.values()):
            return None
        qids = [q for q in self.context.order(dataset) if key("retrieval", "query", dataset.queries[q]) in rows]
        doc_ids = sorted(dataset.corpus)
        return (qids, scores.embeddings[[rows[key("retrieval", "query", dataset.queries[q])] for q in qids]], doc_ids,
                scores.embeddings[[rows[key("retrieval", "document", dataset.corpus[d])] for d in doc_ids]])

    def _timed(self, spec: VariantSpec, dataset: EvalSet, result: Scores) -> None:
        self.run.verdict.header.setdefault("scoring_seconds", {})[f"{spec.id}@{dataset.name}"] = \
            round(result.seconds, 2)

    def _score(self, spec: VariantSpec, dataset: EvalSet, qids: list[str], known: Scores | None = None,
               factory=None, name: str | None = None, order: list[str] | None = None,
               encoding: Encoding | None = None) -> Scores:
        """`qids` scored after `known`; `order`, the order they are a chunk of (default: the run's)."""
        if factory is None and (shared := self._same_model_scores(spec, dataset, qids, known)) is not None:
            return shared
        kept_at = self._kept_path(spec, dataset) if factory is None else None
        if kept_at is not None and (kept := self._kept_head(spec, dataset, kept_at, qids, known)) is not None:
            return kept
        model = (factory or self.models()).load(spec)
        name = name or spec.id
        self.context.progress(f"scoring {name} on {dataset.name} ({len(qids)} queries)")
        started = known.seconds if known is not None else 0.0
        result = score(model, self.context.candidate.kind, dataset, batch_size=self.context.settings.batch_size,
                       top_k=self.context.settings.top_k, qids=qids, known=known,
                       retrieval_queries=self._retrieval_queries(dataset, qids),
                       order=order or self.context.order(dataset),
                       encoding=encoding or self.context.encoding)
        self.context.progress(f"scored {name} on {dataset.name}: {len(result.keys)} pairs in all, "
                              f"{result.seconds - started:.1f}s for this chunk")
        if factory is None:
            self.run.chunks[(spec.id, dataset.name)] = [*self._chunks(spec, dataset, known), len(result.keys)]
        if kept_at is not None:
            with self.cache.lock("scores", kept_at.stem.rsplit("-", 1)[-1]):
                before = self._cached(kept_at, spec.id)
                if before is None or len(before.keys) < len(result.keys):
                    save_scores(result, kept_at)
        return result

    def _kept_path(self, spec: VariantSpec, dataset: EvalSet) -> Path | None:
        """Where a variant's scores on `dataset` are kept across runs: under its artifact's key, the machine, threads
        and device it ran on, the data, the uncut evaluation order and how it is scored. None for a backend whose
        answers are not its artifact's (`SCORES_KEPT = False`: a server, a test's mutation). A warm default run spent
        about 3 s per variant scoring again what the run before had scored (2-core AMD EPYC, docs/measurements.md
        "The default run"); a variant's scores are a prefix of the uncut order whatever the chunks of the looks
        (rerankers score one query per call, embedders encode fixed blocks: quantgate.evaluation.scoring)."""
        if spec.id == REFERENCE_ID or not getattr(backend_of(spec), "SCORES_KEPT", True):
            return None
        s = self.context.settings
        uncut = dataset.evaluation_order(self.context.thresholds.decision["seed"])
        name = self._variant_key(spec, dataset.fingerprint(), s.top_k, uncut, s.batch_size,
                                 self._retrieval_queries(dataset, uncut) is not None, SCORING,
                                 *self.context.encoding.cache_material())
        return self.cache.root / "scores" / f"variant-{dataset.name}-{name}.npz"

    def _variant_key(self, spec: VariantSpec, *material) -> str:
        """A variant's artifact as it runs here, with `material`: its key (what it was built from), the sha256 of
        each of its files (a rebuild under the same key that writes other bytes keeps nothing of the old one's),
        the spec, machine, threads and device."""
        factory = self.models()
        artifact = factory.artifact(spec)
        return cache_key(factory.key(spec), sorted(artifact.manifest.get("files", {}).items()), spec.key_material(),
                         machine_key(), factory.threads, factory.device, *material)[:24]

    def kept_measurement(self, spec: VariantSpec, what: str, material, compute: Callable[[], dict]) -> dict:
        """A measurement of a variant's artifact that runs no data of the decision (batch invariance), kept in the
        cache as its scores are (same key, with `material`: the inputs) and computed only when absent or altered.
        A warm default run spent 22 s of 115 on batch invariance (2-core AMD EPYC, docs/measurements.md "The
        default run"). Written atomically with its sha256; a test mutation or a server is measured every run."""
        if not getattr(backend_of(spec), "SCORES_KEPT", True):
            return compute()
        path = self.cache.root / "measurements" / f"{what}-{self._variant_key(spec, what, material)}.json"
        with self.cache.lock("measurements", path.stem):
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
                body = json.dumps(stored["result"], sort_keys=True, allow_nan=False)
                if hashlib.sha256(body.encode()).hexdigest() == stored["sha256"]:
                    self.context.progress(f"{what} of {spec.id} from {path}")
                    return stored["result"]
            except (OSError, ValueError, KeyError, TypeError):
                pass  # absent, unreadable or altered: measured again
            result = compute()
            body = json.dumps(result, sort_keys=True, allow_nan=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, {"sha256": hashlib.sha256(body.encode()).hexdigest(), "result": result})
            return result

    def _kept_head(self, spec: VariantSpec, dataset: EvalSet, path: Path, qids: list[str],
                   known: Scores | None) -> Scores | None:
        """`known` and `qids` from the kept scores when they hold them as their first queries (None otherwise). The
        scoring seconds are the kept pass's, in proportion to the pairs taken; the verdict names the variant in
        `scores_kept`, so the time guard counts them as the reference's kept scores are counted."""
        with self.cache.lock("scores", path.stem.rsplit("-", 1)[-1]):
            kept = self._cached(path, spec.id)
        if kept is None:
            return None
        wanted = [*dict.fromkeys([q for q, _ in known.keys] if known is not None else []), *qids]
        asked = set(wanted)
        pairs = next((i for i, (q, _) in enumerate(kept.keys) if q not in asked), len(kept.keys))
        if list(dict.fromkeys(q for q, _ in kept.keys[:pairs])) != wanted:
            return None
        head = kept.head(pairs)
        head.seconds = kept.seconds * pairs / max(1, len(kept.keys))
        self.run.chunks[(spec.id, dataset.name)] = [*self._chunks(spec, dataset, known), pairs]
        kept_ids = self.run.verdict.header.setdefault("scores_kept", [])
        if spec.id not in kept_ids:
            kept_ids.append(spec.id)
        self.context.progress(f"scores of {spec.id} on {dataset.name} ({len(wanted)} queries) from {path}")
        return head

    def _chunks(self, spec: VariantSpec, dataset: EvalSet, known: Scores | None) -> list[int]:
        """The pair counts after each scoring call that made `known` (a fresh start: none)."""
        return self.run.chunks.get((spec.id, dataset.name), [0]) if known is not None else [0]

    def _same_model_scores(self, spec: VariantSpec, dataset: EvalSet, qids: list[str],
                           known: Scores | None) -> Scores | None:
        """The scores of `known` and `qids` taken from a variant of this run that runs the same model (the factory's
        `outputs_key`) and was scored in the same calls (its chunks end where this one's would: dynamic int8 takes
        each activation's range from the batch it is in, so only the same calls give the same numbers); None
        when there is none. Nothing is inferred: the scoring seconds stay those of `known`."""
        factory = self.models()
        if spec.id == REFERENCE_ID or (mine := factory.outputs_key(spec)) is None:
            return None
        before = self._chunks(spec, dataset, known)
        wanted = [*dict.fromkeys([q for q, _ in known.keys] if known is not None else []), *qids]
        asked = set(wanted)
        for (vid, name), theirs in self.run.scores.items():
            twin = self.context.registry.variants.get(vid)
            if name != dataset.name or vid == spec.id or twin is None or factory.outputs_key(twin) != mine:
                continue
            pairs = next((i for i, (q, _) in enumerate(theirs.keys) if q not in asked), len(theirs.keys))
            chunks = self.run.chunks.get((vid, name), [])
            if list(dict.fromkeys(q for q, _ in theirs.keys[:pairs])) != wanted \
                    or [b for b in chunks if b <= pairs] != [*before, pairs]:
                continue
            self.run.shared[(spec.id, dataset.name)] = vid
            self.run.chunks[(spec.id, dataset.name)] = [*before, pairs]
            self.context.progress(f"{spec.id} runs the same model as {vid} (same graph bytes and runtime options): "
                                  f"its scores on {dataset.name} ({len(wanted)} queries) are {vid}'s, not inferred "
                                  "again")
            head = theirs.head(pairs)
            return Scores(dataset.name, head.keys, head.scores, head.texts, head.embeddings,
                          known.seconds if known is not None else 0.0)
        return None

    def _retrieval_queries(self, dataset: EvalSet, qids: list[str]) -> list[str] | None:
        """Embedders evaluated on full-corpus retrieval: the corpus is encoded in the scoring pass."""
        if self.context.candidate.kind != "embedder" or not self.context.settings.retrieval:
            return None
        return [dataset.queries[q] for q in qids]

    def _scores_path(self, factory, spec: VariantSpec, dataset: EvalSet, order: list[str], prefix: str) -> Path:
        s = self.context.settings
        encoding = self.context.baseline_encoding if prefix == "baseline" else self.context.encoding
        name = cache_key(factory.key(spec), dataset.fingerprint(), s.top_k, order, s.batch_size,
                         self._retrieval_queries(dataset, order) is not None, SCORING, *encoding.cache_material())[:24]
        return self.cache.root / "scores" / f"{prefix}-{dataset.name}-{name}.npz"

    def baseline_scores(self, factory, dataset: EvalSet, qids: list[str]) -> Scores:
        """The baseline model's scores (`factory`: the baseline's) on `qids`, a prefix of the evaluation order,
        extended as sequential looks need more. The prefix scored so far is kept in the cache under the
        baseline's content hash and the uncut order, so a baseline gated run after run is scored once."""
        spec, seed = self.context.reference, self.context.thresholds.decision["seed"]
        uncut = dataset.evaluation_order(seed)
        path = self._scores_path(factory, spec, dataset, uncut, "baseline")
        memo = ("baseline", dataset.name)
        with self.cache.lock("scores", path.stem.rsplit("-", 1)[-1]):
            known = self.run.scores.get(memo) or self._cached(path, "baseline")
            have = {q for q, _ in known.keys} if known is not None else set()
            if missing := [q for q in qids if q not in have]:
                known = self._score(spec, dataset, missing, known, factory=factory, name="the baseline",
                                    order=uncut, encoding=self.context.baseline_encoding)
                save_scores(known, path)
            elif known is not None and memo not in self.run.scores:
                self.context.progress(f"baseline scores of {dataset.name} from {path}")
        self.run.scores[memo] = known
        wanted = set(qids)
        return known.head(sum(1 for q, _ in known.keys if q in wanted))  # always a prefix of the same order

    def _cached(self, path: Path, whose: str) -> Scores | None:
        result, why = cached_scores(path)
        if why:
            self.context.progress(f"{whose} scores in {path}: {why}: computing them again")
        return result

    def _kept(self, path: Path, whose: str, compute) -> tuple[Scores, bool]:
        """Scores kept in the cache at `path` (sha256-checked, under its lock, so workers and shards compute them
        once), else `compute()` saved there; and whether they came from the cache."""
        with self.cache.lock("scores", path.stem.rsplit("-", 1)[-1]):
            result = self._cached(path, whose)
            if result is not None:
                return result, True
            result = compute()
            save_scores(result, path)
            return result, False

    def _shared_reference(self, spec: VariantSpec, dataset: EvalSet) -> Scores:
        order = self.context.order(dataset)
        path = self._scores_path(self.models(), spec, dataset, order, spec.id)
        result, cached = self._kept(path, "reference", lambda: self._score(spec, dataset, order))
        if cached:
            self.context.progress(f"reference scores of {dataset.name} from {path}")
            self.run.verdict.header["reference_scores_cached"] = True  # the time guard's unit counts their seconds
        return result

    def reference_validation(self) -> tuple[float, dict[str, float]]:
        """The reference's MAP and per-query AP on accuracy control's validation split: scored once, kept in the
        cache with its sha256 (as the evaluation scores are), shared by every tuned variant and later runs."""
        validation, spec = self.context.validation, self.context.reference
        key = (spec.id, validation.name)
        if key not in self.run.scores:
            def compute() -> Scores:
                self.context.progress(f"scoring {spec.id} on {validation.name} (accuracy control's validation split)")
                return score(self.load(spec), self.context.candidate.kind, validation,
                             batch_size=self.context.settings.batch_size, encoding=self.context.encoding)

            path = self._scores_path(self.models(), spec, validation, sorted(validation.candidates), "validation")
            self.run.scores[key] = self._kept(path, "reference validation", compute)[0]
        quality = evaluate_scores(validation, self.run.scores[key], "validation")
        return quality.scores["map"], quality.per_query["map"]
