"""Resuming a run that did not finish: a killed run keeps the variants it finished (the verdict is
written after every variant, marked incomplete), and the next run on the same cache and settings takes
them from that verdict instead of computing them again.

A saved variant is trusted only when its `resume_key` matches: the variant's artifact key (candidate
bytes, spec, calibration inputs, library versions) and every input of its measurements (data, thresholds,
subset, batch sizes, speed settings, device, threads, machine). Anything else is computed again. A
complete verdict is never resumed from: a finished run is the answer, and a new run measures again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantgate.core.cache import cache_key
from quantgate.core.spec import VariantSpec
from quantgate.results.verdict import FORMAT, Verdict, VerdictFormatError
from quantgate.results.verdict import read as read_verdict

PARTIAL_GLOB = "verdict.*.json"  # what each pytest-xdist worker writes after each of its variants


def inputs_key(context) -> str:
    """Everything besides the artifact that decides a variant's gate results in this run."""
    from quantgate.speed.bench import machine_key  # noqa: PLC0415 -- bench imports the data layer

    # what was judged (thresholds, data, subset, prompts, stored formats, speed settings: quantgate.results.judged)
    # and the conditions it was measured in
    return cache_key(FORMAT, context.candidate.content_hash, context.judged.to_dict(), context.settings.batch_size,
                     context.device, context.threads, machine_key())


def variant_key(context, factory, spec: VariantSpec) -> str:
    """What a saved result of the variant must match to be taken: its artifact (`factory.key`), runtime options and
    this run's inputs."""
    return cache_key(factory.key(spec), spec.key_material(), inputs_key(context))  # the spec: its runtime options


def saved_variants(report_dir: str | Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The finished variants of an incomplete run in `report_dir` (its verdict.json and the verdicts
    xdist workers wrote), and where they came from. Unreadable or other-format files are passed over:
    a run that cannot resume computes everything again."""
    folder = Path(report_dir)
    found: dict[str, dict[str, Any]] = {}
    sources = []
    for path in [folder / "verdict.json", *sorted(folder.glob(PARTIAL_GLOB))]:
        try:
            data = read_verdict(path)
        except VerdictFormatError:
            continue
        if data.get("complete"):
            continue
        finished = set(data.get("finished", []))
        verdict = Verdict.from_dict(data, path)
        chosen = {vid: entry for vid, entry in verdict.variants.items() if vid in finished and entry.get("resume_key")}
        if chosen:
            found.update(chosen)
            sources.append(str(path))
    return found, sources
