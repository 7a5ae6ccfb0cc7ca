"""Accuracy control: what a tuned int8 variant is tuned against, and how it is measured.

NNCF's `quantize_with_accuracy_control` and INC's `autotune` each take a validation function
and a limit. Both get the quality gate's own: the limit is the variant's relative reranking
MAP loss from thresholds.toml (`reranking_map_max_loss`, with its per-variant overrides), and
the metric is the gate's scoring followed by mteb's MAP (quantgate.evaluation.quality.evaluate_scores) on
a validation split of held-out train queries (quantgate.evaluation.data.validation_set) -- disjoint from
the calibration inputs and from every evaluation query. Passing validation is not passing the
gate: the tuned artifact is then gated on the evaluation data like every other variant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quantgate.evaluation.data import EvalSet, inputs_fingerprint
from quantgate.evaluation.encoding import PLAIN, Encoding
from quantgate.evaluation.scoring import score


@dataclass(frozen=True)
class Tuning:
    max_loss: float  # relative: (reference - variant) / reference
    max_trials: int  # INC: configurations tried; NNCF: groups reverted at most
    ranking_queries: int  # NNCF: queries used to rank the groups of quantizers
    validation: EvalSet
    batch_size: int = 32
    # the reference's (torch-fp32, the candidate as users load it) validation MAP and per-query AP by qid: computed
    # once and kept in the cache, it is the "initial" metric of NNCF and INC alike (each used to validate its own
    # fp32 copy first: one full validation pass, two when NNCF runs twice; 8-9 minutes a pass on a base-size model)
    reference: Callable[[], tuple[float, dict[str, float]]] | None = field(default=None, compare=False)
    encoding: Encoding = PLAIN  # the prompts and similarity the gate scores with: validation sees the same inputs

    def key_material(self) -> dict[str, Any]:
        """What of the tuning decides the artifact's bytes (enters the cache key)."""
        v = self.validation
        return {"max_loss": self.max_loss, "max_trials": self.max_trials, "ranking_queries": self.ranking_queries,
                **({"encoding": self.encoding.to_dict()} if self.encoding.cache_material() else {}),
                "validation": inputs_fingerprint([v.candidates, v.test_qrels,
                                                  [v.queries[q] for q in sorted(v.candidates)]])}

    @property
    def qids(self) -> list[str]:
        return sorted(self.validation.candidates)

    def subset(self, qids: list[str]) -> EvalSet:
        v = self.validation
        return dataclasses.replace(v, candidates={q: v.candidates[q] for q in qids})

    def quality(self, model, kind: str, qids: list[str] | None = None) -> tuple[float, list[float]]:
        """(MAP, per-query AP in `qids` order) of a loaded model on the validation split, by mteb."""
        from quantgate.evaluation.quality import evaluate_scores  # noqa: PLC0415 -- mteb, on the first validation

        qids = self.qids if qids is None else list(qids)
        subset = self.subset(qids)
        scores = score(model, kind, subset, batch_size=self.batch_size, encoding=self.encoding)
        quality = evaluate_scores(subset, scores, "validation")
        per_query = quality.per_query["map"]
        return quality.scores["map"], [per_query[q] for q in qids]

    def reference_quality(self, qids: list[str] | None = None) -> tuple[float, list[float]]:
        """The reference's (MAP, per-query AP in `qids` order) on the validation split; MAP of a subset is the mean
        of its queries' AP (mteb's MAP is that mean, over every query with a relevant passage: all of these)."""
        if self.reference is None:
            raise ValueError("this Tuning was made without the reference's validation scores")
        value, per_query = self.reference()  # of the whole split: a time guard's sample of it is a subset
        qids = self.qids if qids is None else list(qids)
        if sorted(qids) == sorted(per_query):
            return value, [per_query[q] for q in qids]
        chosen = [per_query[q] for q in qids]
        return sum(chosen) / len(chosen), chosen

    @staticmethod
    def loss(reference: float, value: float) -> float:
        return (reference - value) / reference if reference else 0.0

    def summary(self, reference: float, value: float, **extra: Any) -> dict[str, Any]:
        """What the manifest records: the validation numbers behind the tuned artifact."""
        loss = self.loss(reference, value)
        return {"metric": "map", "validation_set": self.validation.name, "validation_queries": len(self.qids),
                "reference": round(reference, 6), "quantized": round(value, 6), "loss": round(loss, 6),
                "max_loss": self.max_loss, "met": loss <= self.max_loss, **extra}
