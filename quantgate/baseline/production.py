"""The model in production that a candidate is gated against (--gate-baseline).

Three forms, one question (is the new version worse than the one we ship?):
- a model directory, or a hub id (the real `snapshot_download` path; offline, one clear error): scored like
  the candidate's reference, fp32 torch, on the same seeded query order, its scores kept in the artifact cache
  under its content hash (quantgate.session.scores.baseline_scores);
- a previous run's verdict.json (or the report folder holding it): the per-query values its reference
  recorded stand in for the model, so no weights are needed.
Architecture, tokenizer and head may differ from the candidate's; the kind and the data must match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantgate.core.candidate import Candidate, CandidateError, check_source, resolve
from quantgate.core.gates import Gate
from quantgate.core.results import RunResult
from quantgate.errors import QuantgateUsageError
from quantgate.evaluation.data import EvalSet
from quantgate.evaluation.quality import TaskQuality
from quantgate.results.verdict import VerdictFormatError, check_format
from quantgate.variants.registry import REFERENCE_ID


class BaselineError(QuantgateUsageError):
    """The baseline cannot be compared with this candidate; the message says what to do."""


def _verdict_file(source: str) -> Path | None:
    """The verdict a source names: a .json file, or a folder holding verdict.json and no model."""
    path = Path(source).expanduser()
    if path.suffix == ".json":
        return path
    if path.is_dir() and (path / "verdict.json").is_file() and not (path / "config.json").is_file():
        return path / "verdict.json"
    return None


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _said(err: CandidateError) -> str:
    """A candidate error, said of the baseline."""
    return "--gate-baseline: " + str(err).removeprefix("candidate ").replace("--candidate PATH", "--gate-baseline PATH")


def check(source: str) -> None:
    """The cheap part, at start-up: a verdict file exists, a model directory is not empty, anything else
    looks like a hub id. Reads no model and touches no network."""
    verdict = _verdict_file(source)
    if verdict is not None and not verdict.is_file():
        raise BaselineError(f"--gate-baseline {source}: no such verdict file; pass a model directory, a hub id or "
                            "a previous run's verdict.json")
    if verdict is None:
        try:
            check_source(source)
        except CandidateError as err:
            raise BaselineError(_said(err)) from None


@dataclass(frozen=True)
class Baseline:
    source: str
    kind: str
    sha256: str  # the baseline model's content hash (a verdict: the hash of the model it gated)
    candidate: Candidate | None = None  # a model: scored in this run
    verdict: RunResult | None = None  # a previous verdict: its reference's per-query values
    verdict_path: Path | None = None

    def header(self) -> dict[str, Any]:
        """What the verdict's header says about the baseline."""
        out = {"source": self.source, "sha256": self.sha256, "kind": self.kind,
               "origin": "verdict" if self.verdict is not None else "model"}
        if self.verdict is not None:
            out |= {"verdict": str(self.verdict_path), "verdict_written_at": self.verdict.written_at,
                    "candidate_source": self.verdict.candidate.get("source")}
        return out

    def saved_quality(self, dataset: EvalSet, task: str, top_k: int | None) -> TaskQuality:
        """A verdict baseline: its reference's quality on `dataset`, with the per-query values it recorded."""
        assert self.verdict is not None
        where = self.verdict_path
        fingerprint = dataset.fingerprint()
        names = [d.name for d in self.verdict.data if d.sha256 == fingerprint]
        if not names:
            gated = ", ".join(f"{d.name} (sha256 {d.sha256[:12]})" for d in self.verdict.data)
            raise BaselineError(f"--gate-baseline {where} was gated on {gated or 'no local data'}, not on "
                                f"{dataset.name} (sha256 {fingerprint[:12]}): a regression compares both models on "
                                "the same data; pass the baseline model instead, or the data it was gated on")
        saved_top_k = self.verdict.top_k
        if saved_top_k != top_k:
            raise BaselineError(f"--gate-baseline {where} scored the first {saved_top_k or 'all'} candidates of each "
                                f"query, this run {top_k or 'all'}: the per-query values are not comparable; use the "
                                f"same --gate-top-k")
        found = next((t for t in self._saved_tasks() if t["dataset"] in names and t["task"] == task), None)
        if found is None or not found.get("per_query"):
            raise BaselineError(f"--gate-baseline {where} has no per-query {task} values on {dataset.name} for its "
                                f"reference (gated with --gate-no-retrieval, or by an older quantgate): pass the "
                                "baseline model instead")
        return TaskQuality.from_dict(found)

    def saved_named(self, name: str) -> TaskQuality:
        """A verdict baseline: its reference's quality on an mteb task or corpus-only folder, by name."""
        found = next((t for t in self._saved_tasks() if t["dataset"] == name and t.get("per_query")), None)
        if found is None:
            raise BaselineError(f"--gate-baseline {self.verdict_path} has no per-query values on {name}: pass the "
                                "baseline model instead")
        return TaskQuality.from_dict(found)

    def _saved_tasks(self) -> list[dict[str, Any]]:
        assert self.verdict is not None
        reference = self.verdict.variant(REFERENCE_ID)
        return reference.numbers(Gate.QUALITY).get("tasks", [])


def resolve_baseline(source: str, kind: str, trust_remote_code: bool = False) -> Baseline:
    """Locate the baseline and check it can be compared with a candidate of `kind`."""
    verdict_path = _verdict_file(source)
    if verdict_path is not None:
        try:
            verdict = check_format(json.loads(verdict_path.read_text()), verdict_path)
        except (OSError, json.JSONDecodeError) as err:
            raise BaselineError(f"--gate-baseline {verdict_path}: cannot read it ({err})") from None
        except VerdictFormatError as err:
            raise BaselineError(f"--gate-baseline {err}") from None
        read = RunResult.from_dict(verdict)
        reference = read.variant(REFERENCE_ID)
        if Gate.QUALITY not in reference.gates:
            raise BaselineError(f"--gate-baseline {verdict_path}: its reference ({REFERENCE_ID}) was not gated for "
                                "quality, so it holds no per-query values; pass the baseline model instead")
        baseline = Baseline(source, read.candidate["kind"], read.candidate["sha256"], verdict=read,
                            verdict_path=verdict_path.resolve())
        reason = f"its verdict gated a {baseline.kind}"
    else:
        try:
            model = resolve(source, "auto", trust_remote_code)
        except CandidateError as err:
            raise BaselineError(_said(err)) from None
        baseline = Baseline(source, model.kind, model.content_hash, candidate=model)
        reason = model.kind_reason
    if baseline.kind != kind:
        raise BaselineError(f"--gate-baseline {source} is {_a(baseline.kind)} ({reason}) and the candidate "
                            f"{_a(kind)}: a regression compares two models of one kind on one task; pass {_a(kind)} "
                            "as the baseline")
    return baseline
