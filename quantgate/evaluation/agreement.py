"""Agreement of a variant's scores with the reference's, after activation.

Rerankers: the scores `predict()` returns (the model's activation applied: sigmoid for
one-logit cross-encoders). Embedders: the cosine between each text's variant and reference
embeddings, and the query-passage cosine similarities the embeddings produce.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from quantgate.core.checks import crossed
from quantgate.core.metrics import AGREEMENT_METRICS
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.encoding import unit_rows
from quantgate.evaluation.scoring import Scores


@dataclass
class AgreementResult:
    variant: str
    dataset: str
    kind: str
    metrics: dict[str, float]
    worst: list[dict] = field(default_factory=list)  # the pairs that moved most
    pairs: int = 0
    queries: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def compare(variant: str, kind: str, reference: Scores, candidate: Scores, dataset: EvalSet,
            worst_n: int = 3) -> AgreementResult:
    if reference.keys != candidate.keys:
        raise ValueError(f"{variant}: scored other pairs than the reference "
                         f"({len(candidate.keys)} vs {len(reference.keys)})")
    diff = np.abs(candidate.scores - reference.scores)
    metrics: dict[str, float] = {
        "max_abs_error": float(diff.max()),  # one pair: grows with the number of pairs scored
        "p99_abs_error": float(np.quantile(diff, 0.99)),  # the same at any size
        "mean_abs_error": float(diff.mean()),
        **ranking_agreement(reference, candidate),
    }
    metrics.update(ties(candidate, kind))
    metrics.update({f"{k}_reference": v for k, v in ties(reference, kind).items()})
    if kind == "embedder":  # the same text in both (a variant scored in chunks encodes in another order)
        rows = {t: i for i, t in enumerate(reference.texts)}
        # unit rows: a model compared by dot or a distance keeps its own vectors (Encoding.prepare)
        cosines = np.einsum("ij,ij->i", unit_rows(reference.embeddings[[rows[t] for t in candidate.texts]]),
                            unit_rows(candidate.embeddings))
        metrics["cosine_min"] = float(cosines.min())
        metrics["cosine_mean"] = float(cosines.mean())
    worst = []
    for i in np.argsort(-diff)[:worst_n]:
        qid, docid = reference.keys[i]
        worst.append({
            "qid": qid, "docid": docid, "query": shorten(dataset.queries.get(qid, "")),
            "passage": shorten(dataset.corpus.get(docid, "")), "reference": float(reference.scores[i]),
            "variant": float(candidate.scores[i]),
        })
    return AgreementResult(variant, dataset.name, kind, metrics, worst, len(reference.keys), len(reference.by_query()))


def ties(scores: Scores, kind: str) -> dict[str, float]:
    """Pairs whose score equals another candidate's of the same query, and (rerankers) scores at the
    activation's bounds (sigmoid saturated to exactly 0 or 1: half-precision activations do that, and
    create ties). Every variant's ties are broken the same way, by mteb's evaluator (pytrec_eval orders
    equal scores by document id, as trec_eval does)."""
    tied = 0
    for _, values in scores.by_query().values():
        _, counts = np.unique(values, return_counts=True)
        tied += int(counts[counts > 1].sum())
    out = {"tied_pairs": float(tied)}
    if kind == "reranker" and len(scores.scores) and 0.0 <= scores.scores.min() and scores.scores.max() <= 1.0:
        out["saturated_pairs"] = float(np.count_nonzero((scores.scores <= 0.0) | (scores.scores >= 1.0)))
    return out


def ranking_agreement(reference: Scores, candidate: Scores) -> dict[str, float]:
    """Per-query Kendall tau (mean, worst), top-1 agreement and top-10 overlap."""
    from scipy.stats import kendalltau  # noqa: PLC0415 -- scipy costs ~0.3 s to import; only scoring needs it

    taus, top1, overlap = [], [], []
    ref_groups, var_groups = reference.by_query(), candidate.by_query()
    for qid, (_, ref) in ref_groups.items():
        var = var_groups[qid][1]
        if len(ref) < 2:
            continue
        tau = kendalltau(ref, var).statistic
        if np.isnan(tau):  # a constant list: agreement only if both are constant
            tau = 1.0 if np.ptp(ref) == np.ptp(var) == 0 else 0.0
        taus.append(float(tau))
        top1.append(float(np.argmax(ref) == np.argmax(var)))
        k = min(10, len(ref))
        overlap.append(len(set(np.argsort(-ref, kind="stable")[:k]) & set(np.argsort(-var, kind="stable")[:k])) / k)
    if not taus:
        return {}
    return {
        "kendall_tau_mean": float(np.mean(taus)),
        "kendall_tau_worst": float(np.min(taus)),
        "top1_agreement": float(np.mean(top1)),
        "top10_overlap": float(np.mean(overlap)),
    }


def shorten(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def agreement_failures(result: AgreementResult, limits: dict[str, float]) -> list[str]:
    return crossed(result.metrics, limits, AGREEMENT_METRICS, result.dataset)


def describe_worst(result: AgreementResult) -> str:
    lines = [f"  worst pairs on {result.dataset} (reference -> variant):"]
    for w in result.worst:
        lines.append(f"    {w['reference']:.4f} -> {w['variant']:.4f}  q: {w['query']!r}  p: {w['passage']!r}")
    return "\n".join(lines)
