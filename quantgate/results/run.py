"""What one gate run measured, filled as its gates run. The session (quantgate.session.core) holds only
configuration; this is the run's state, and the verdict it ends in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from quantgate.core.memory import PeakSampler
from quantgate.evaluation.scoring import Scores
from quantgate.results.verdict import Verdict


@dataclass
class GateRun:
    verdict: Verdict = field(default_factory=lambda: Verdict({}))
    scores: dict[tuple[str, str], Scores] = field(default_factory=dict)  # (variant, data set): filled by scoring
    chunks: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (variant, data set): pairs after each call
    shared: dict[tuple[str, str], str] = field(default_factory=dict)  # (variant, data set) -> whose scores it took
    quality: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # (variant, data set, task): quality.py
    evaluations: dict[str, Any] = field(default_factory=dict)  # variant -> quantgate.decisions.sequential.Evaluation
    looks: dict[tuple, Any] = field(default_factory=dict)  # a look's agreement or quality by what it is computed from
    speed: dict[tuple[str, str], float] = field(default_factory=dict)  # (variant, batch label) -> items/s: speed gate
    auto_batches: dict[str, tuple[int, list[dict]]] = field(default_factory=dict)  # variant -> (batch, trials)
    worker_builds: tuple[int, int] = (0, 0)  # (built, from cache) reported by pytest-xdist workers
    current: str | None = None  # the variant whose tests are running (quantgate.session.lifecycle)
    started: dict[str, float] = field(default_factory=dict)  # variant -> perf_counter at its first test
    sampler: PeakSampler = field(default_factory=PeakSampler)  # the variant in hand's peak memory
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)  # finished variants of an incomplete run
    resumed: dict[str, dict[str, Any]] = field(default_factory=dict)  # those this run took (quantgate.results.resume)
    expected: list[str] = field(default_factory=list)  # variants with collected tests (quantgate.fixtures.outcomes)
    ran: set[str] = field(default_factory=set)  # variants whose test bodies ran: each ends with a row
    formats: dict[tuple[str, str], Any] = field(default_factory=dict)  # (variant, data set): its float32 index quality
    began: float = field(default_factory=time.perf_counter)  # the session's start: the time budget counts from it
    estimates: dict[str, Any] = field(default_factory=dict)  # variant -> quantgate.variants.timeguard.Estimate
    validation_cuts: dict[str, int] = field(default_factory=dict)  # tuned variant -> validation queries (time guard)
    regression: Any = None  # quantgate.session.regression.BaselineComparison: the candidate against --gate-baseline
    setup_errors: dict[str, str] = field(default_factory=dict)  # a team's fixture that raised in setup -> its line

    def fold_worker(self, payload: dict[str, Any]) -> None:
        """xdist controller: a worker's verdict and build counts into this run's."""
        self.verdict.merge(payload["verdict"])
        self.worker_builds = (self.worker_builds[0] + payload["built"], self.worker_builds[1] + payload["taken"])
