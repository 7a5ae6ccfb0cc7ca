"""Three-valued decisions on a relative quality loss, re-evaluated after each chunk of queries.

The question per metric: is the variant's relative loss L = (mean r - mean v) / mean r within the
limit δ? On paired per-query values r (reference) and v (variant), L > δ exactly when the mean of
z = (1 - δ) r - v is above 0, so one paired t statistic T = mean(z) / (sd(z) / √n) answers it:

- **pass** when T <= -c (the one-sided upper bound on L is within the limit: non-inferiority),
- **fail** when T >= c (the one-sided lower bound on L is above the limit),
- **inconclusive** otherwise.

Looked at after every chunk, the critical value c of look k comes from a group-sequential design
(Lan & DeMets' O'Brien-Fleming-type α-spending, computed here by numerical integration): at loss = δ
the chance of ever passing is at most α, and of ever failing at most α, however many looks are taken.
O'Brien-Fleming spends almost nothing early, so the last look is nearly as powerful as one
fixed-size test (1.70 vs 1.645 for 5 looks at α = 5%); variants that agree with the reference decide
at the first look anyway (their z has a huge |T|). The normal boundary is turned into a t quantile
with n - 1 degrees of freedom at each look (small n). The interval shown is Fieller's interval for
the ratio at the same critical value: the losses the test cannot yet tell from the observed one, so
the decision and the interval never disagree. Smucker et al. (CIKM 2007) found the paired t,
bootstrap and randomization tests to agree on IR metrics; the t statistic is the one whose
sequential boundaries are known in closed form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

ORDER = {"pass": 0, "inconclusive": 1, "fail": 2}  # a variant's decision is the worst of its metrics


def worst(decisions: list[str]) -> str:
    return max(decisions, key=ORDER.__getitem__, default="pass")


def schedule(total: int, first: int) -> list[int]:
    """Query counts at which decisions are looked at: first, 2 x first, 4 x first, ..., total. A look
    within 1.5x of the total is dropped: the total would get almost no α left (43 queries: 20, 40, 43 gave
    critical values 2.41, 1.74, 1.81; 20, 43 gives 2.41, 1.70)."""
    looks, n = [], max(1, first)
    while n * 1.5 <= total:
        looks.append(n)
        n *= 2
    return [*looks, total] if total else []


def spent(t: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type spending, both directions together (α each)."""
    from scipy.stats import norm  # noqa: PLC0415 -- scipy costs ~0.3 s to import; only decisions need it

    return 0.0 if t <= 0 else float(2 * norm.sf(norm.ppf(1 - alpha) / math.sqrt(min(t, 1.0))))


@lru_cache(maxsize=256)
def boundaries(fractions: tuple[float, ...], alpha: float, grid: int = 801) -> tuple[float, ...]:
    """Normal critical values |Z_k| >= c_k at information fractions t_1 < ... < t_K = 1 (Armitage-McPherson-Rowe
    recursion on a grid of the Brownian motion W(t) = Z √t over the continuation region)."""
    from scipy.optimize import brentq  # noqa: PLC0415 -- see spent()
    from scipy.stats import norm  # noqa: PLC0415

    out: list[float] = []
    points = density = None
    before = previous = 0.0
    for t in fractions:
        target = spent(t, alpha) - before
        if points is None:
            c = float(norm.isf(target / 2)) if target > 0 else math.inf
        else:
            step = math.sqrt(t - previous)

            def leaving(c: float, points=points, density=density, step=step, t=t) -> float:
                edge = c * math.sqrt(t)
                tail = norm.sf((edge - points) / step) + norm.cdf((-edge - points) / step)
                return float(np.trapezoid(density * tail, points))

            c = brentq(lambda c, target=target: leaving(c) - target, 1e-6, 50.0) \
                if leaving(50.0) < target < leaving(1e-6) else 50.0
        out.append(c)
        before = spent(t, alpha)
        edge = min(c, 50.0) * math.sqrt(t)
        new = np.linspace(-edge, edge, grid)
        if points is None:
            density = norm.pdf(new / math.sqrt(t)) / math.sqrt(t)
        else:
            kernel = norm.pdf((new[:, None] - points[None, :]) / step) / step
            density = np.trapezoid(kernel * density[None, :], points, axis=1)
        points, previous = new, t
    return tuple(out)


def critical(z: float, n: int) -> float:
    """The normal boundary as a t quantile with n - 1 degrees of freedom (unknown variance)."""
    from scipy.stats import norm, t  # noqa: PLC0415 -- see spent()

    if n < 2:
        return math.inf
    return float(t.isf(norm.sf(z), n - 1))


@dataclass
class Decision:
    dataset: str
    task: str
    metric: str
    decision: str  # "pass" | "fail" | "inconclusive"
    loss: float  # (reference - variant) / reference on the queries used
    low: float  # one-sided lower bound (at the look's critical value)
    high: float  # one-sided upper bound
    limit: float
    reference: float
    variant: float
    queries: int  # used
    available: int  # in the evaluation order (the budget)
    look: int  # 1-based
    looks: int
    critical: float
    needed: int | None = None  # inconclusive: about how many queries would decide it (None: no number would)
    confidence: float = 0.97  # of each one-sided bound (thresholds.toml [decision] confidence)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def interval(self) -> str:
        return f"[{_pct(self.low)}, {_pct(self.high)}]"

    def describe(self) -> str:
        where = f"[{self.dataset} {self.task}] {self.metric}"
        numbers = (f"loss {self.loss:+.2%}, one-sided {self.confidence:.0%} bounds {self.interval()} "
                   f"vs limit {self.limit:.2%} "
                   f"(reference {self.reference:.4f}, variant {self.variant:.4f}; {self.queries} of {self.available} "
                   f"queries, look {self.look}/{self.looks})")
        if self.decision == "fail":
            return f"{where}: FAIL, lower bound {_pct(self.low)} > limit {self.limit:.2%}: {numbers}"
        if self.decision == "pass":
            return f"{where}: pass, upper bound {_pct(self.high)} <= limit {self.limit:.2%}: {numbers}"
        if self.high <= self.limit or self.low > self.limit:  # the bounds clear it, the query count does not
            why = (f"the bounds clear the limit, but on {self.queries} queries only a variant equal to the "
                   "reference on every query is decided ([decision] min_queries)")
        else:
            why = "the interval contains the limit"
        return f"{where}: INCONCLUSIVE, {why}: {numbers}; {self.what_would_decide()}"

    def what_would_decide(self) -> str:
        if self.needed is None:
            return "the observed loss sits on the limit: no number of queries would decide it"
        return (f"needs about {self.needed} queries at this per-query spread (have {self.queries}): "
                "pass a larger --gate-data or raise --gate-max-queries")


def _pct(value: float) -> str:
    return "-inf" if value == -math.inf else "+inf" if value == math.inf else f"{value:+.2%}"


def decide(reference: np.ndarray, variant: np.ndarray, limit: float, c: float,
           min_queries: int = 2) -> tuple[str, float, float, float]:
    """(decision, loss, low, high) for paired per-query values at critical value c. Under `min_queries` only a
    variant that reproduces the reference's value on every query is decided: the per-query changes of int8
    variants are rare and large, and a few queries cannot estimate their spread (with 43 queries a weight-noise
    variant whose loss is the limit was passed in 16% of simulated runs: docs/measurements.md, "Decisions")."""
    r, v = np.asarray(reference, dtype=np.float64), np.asarray(variant, dtype=np.float64)
    n = len(r)
    mean_r = r.mean() if n else 0.0
    loss = float((mean_r - v.mean()) / mean_r) if n and mean_r > 0 else 0.0
    if n < 2 or mean_r <= 0:
        return "inconclusive", loss, -math.inf, math.inf
    z = (1 - limit) * r - v
    sd = z.std(ddof=1)
    if sd > 0:
        stat = z.mean() / (sd / math.sqrt(n))
    else:
        stat = math.copysign(math.inf, z.mean()) if z.mean() else 0.0
    decision = "fail" if stat >= c else "pass" if stat <= -c else "inconclusive"
    if n < min_queries and np.any(r != v):
        decision = "inconclusive"
    low, high = fieller(r - v, r, c)
    return decision, loss, low, high


def fieller(d: np.ndarray, r: np.ndarray, c: float) -> tuple[float, float]:
    """Fieller's interval for mean(d) / mean(r): the ratios L with |mean(d - L r)| < c sd(d - L r) / √n."""
    n = len(d)
    cov = np.cov(np.vstack([d, r]), ddof=1)
    s_dd, s_dr, s_rr = cov[0, 0], cov[0, 1], cov[1, 1]
    m_d, m_r = d.mean(), r.mean()
    a = n * m_r**2 - c**2 * s_rr
    b = n * m_d * m_r - c**2 * s_dr
    k = n * m_d**2 - c**2 * s_dd
    disc = b * b - a * k
    if a <= 0 or disc < 0:
        return -math.inf, math.inf
    root = math.sqrt(disc)
    return float((b - root) / a), float((b + root) / a)


def needed_queries(reference: np.ndarray, variant: np.ndarray, limit: float, c: float,
                   cap: int = 1_000_000) -> int | None:
    """About how many queries would make |T| reach c if the observed mean and spread of z held."""
    z = (1 - limit) * np.asarray(reference, dtype=np.float64) - np.asarray(variant, dtype=np.float64)
    if len(z) < 2 or z.mean() == 0:
        return None
    n = math.ceil((c * z.std(ddof=1) / abs(z.mean())) ** 2)
    return n if n <= cap else None


class Sequence:
    """The looks of one data set: query counts, and each look's normal critical value."""

    def __init__(self, available: int, first: int, alpha: float) -> None:
        self.available, self.alpha = available, alpha
        self.looks = schedule(available, first) or [0]
        self.z = boundaries(tuple(n / available for n in self.looks), alpha) if available else (math.inf,)

    def critical(self, look: int) -> float:
        """Look `look` (0-based): the t critical value at its number of queries."""
        return critical(self.z[look], self.looks[look])


def evaluate(dataset: str, task: str, metric: str, reference: np.ndarray, variant: np.ndarray, limit: float,
             sequence: Sequence, look: int, min_queries: int = 2) -> Decision:
    c = sequence.critical(look)
    decision, loss, low, high = decide(reference, variant, limit, c, min_queries)
    final_c = critical(sequence.z[-1], sequence.available) if sequence.z else c
    needed = needed_queries(reference, variant, limit, final_c) if decision == "inconclusive" else None
    if decision == "inconclusive" and (needed is not None or low > limit or high < limit):
        needed = max(needed or 0, min_queries)
    return Decision(dataset, task, metric, decision, loss, low, high, limit, float(np.mean(reference)),
                    float(np.mean(variant)), len(reference), sequence.available, look + 1, len(sequence.looks), c,
                    needed, 1 - sequence.alpha)
