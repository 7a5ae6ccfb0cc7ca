"""The run's verdict: every gate's numbers per variant, written atomically at the end.

Gates hand back results as they run (recorded by the plugin: quantgate.fixtures.recording.record); `write` puts one
JSON file in the report directory. A run that did not finish (interrupted, or a crash outside the tests) is written
with `"complete": false`, and no variant of it is marked as passed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantgate import backends
from quantgate.core import machine
from quantgate.core.cache import write_json_atomic
from quantgate.core.gates import Gate
from quantgate.core.results import GateResult, VariantResult
from quantgate.core.spec import REFERENCE_ID
from quantgate.errors import QuantgateUsageError

REQUIRED = {"candidate": dict, "variants": dict, "complete": bool}  # what every reader of a verdict needs
FORMAT = "quantgate-verdict/2"  # 2: per-variant "decision" (pass / fail / inconclusive) from sequential bounds


class VerdictFormatError(QuantgateUsageError):
    """A verdict.json this version cannot read (another format, or not a verdict)."""


def read(path: str | Path) -> dict[str, Any]:
    """A verdict.json from disk, or one error naming the file: absent, unreadable, cut short (a copy that stopped
    half way), not JSON, or another format."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise VerdictFormatError(f"{path}: cannot read the verdict ({getattr(err, 'strerror', None) or err})") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        cut = " (the file ends early: a cut copy?)" if isinstance(err, json.JSONDecodeError) and \
            err.pos >= len(text.rstrip()) else ""
        raise VerdictFormatError(f"{path}: not a readable verdict{cut} ({err}); gate again or restore the file") \
            from None
    return check_format(data, path)


def check_format(data: Any, where: str | Path) -> dict[str, Any]:
    """A verdict read from disk (an older format through its converter, `UPGRADES`), or one clear error: publish and
    merge never half-trust an old file."""
    stated = data.get("format") if isinstance(data, dict) else None
    if stated not in (FORMAT, *UPGRADES):
        found = stated if isinstance(data, dict) else type(data).__name__
        raise VerdictFormatError(f"{where}: verdict format {found!r}, this quantgate reads "
                                 f"{', '.join(map(repr, (FORMAT, *UPGRADES)))}: gate again with this version")
    missing = [key for key, kind in REQUIRED.items() if not isinstance(data.get(key), kind)]
    if missing:
        raise VerdictFormatError(f"{where}: says {stated!r} but has no {', '.join(missing)}: not a verdict this "
                                 f"quantgate wrote (it reads verdicts written by `pytest gates/`); gate again or "
                                 "restore the file")
    return UPGRADES[stated](data) if stated in UPGRADES else data


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 verdict (before three-valued decisions) read as format 2. Its quality gate compared the point
    estimate of each loss with the limit, which decides nothing at the one-sided bound format 2 decides on: a
    variant with nothing crossed reads as inconclusive (a crossed limit or an error stays a fail; the reference, whose
    loss is zero by definition, passes), so report and history show it and publish takes none of the others.
    `converted_from` says so."""
    variants = {}
    for vid, entry in data["variants"].items():
        entry = dict(entry) if isinstance(entry, dict) else {}
        gates = {name: dict(g) for name, g in (entry.get("gates") or {}).items() if isinstance(g, dict)}
        if Gate.QUALITY in gates and "decision" not in gates[Gate.QUALITY]:
            held = "pass" if vid == REFERENCE_ID else "inconclusive"
            gates[Gate.QUALITY]["decision"] = held if gates[Gate.QUALITY].get("passed") else "fail"
        entry["gates"] = gates
        decision = VariantResult.from_dict(vid, entry).decision
        variants[vid] = {**entry, "decision": decision, "passed": data["complete"] and decision == "pass"}
    return {**data, "format": FORMAT, "converted_from": data["format"], "variants": variants}


UPGRADES = {"quantgate-verdict/1": _from_format_1}  # an older format -> its converter to FORMAT


def only(verdict: dict[str, Any], variants: list[str]) -> dict[str, Any]:
    """The verdict with these variants' rows alone (publish's card shows what it publishes)."""
    kept = verdict.get("variants") or {}
    return {**verdict, "variants": {vid: kept[vid] for vid in variants if vid in kept}}


def decision_of(entry: dict[str, Any]) -> str:
    """A variant's decision (quantgate.core.results.VariantResult.decision) from its verdict entry."""
    return VariantResult.from_dict("", entry).decision


@dataclass
class Verdict:
    header: dict[str, Any]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = field(default=0, repr=False)  # results recorded in this process: a test that added none is seen

    @classmethod
    def from_dict(cls, data: Any, where: str | Path = "verdict") -> Verdict:
        """A written verdict read back (publish, merge, report): its format checked, its run-level fields as
        the header, its variants as recorded (decision and passed are recomputed by to_dict)."""
        data = check_format(data, where)
        skip = {"format", "complete", "written_at", "variants", "machine", "libraries"}
        variants = {vid: {k: v for k, v in entry.items() if k not in ("decision", "passed")}
                    for vid, entry in data.get("variants", {}).items()}
        return cls({k: v for k, v in data.items() if k not in skip}, variants)

    def record(self, variant: str, name: str, result: GateResult) -> None:
        """One gate's result for the variant (the plugin's one writer calls this: quantgate.fixtures.recording.record).
        A stored format (VARIANT@FORMAT) is kept apart from its gates, so a format that fails leaves the variant's
        own decision as it was (publish leaves the format out, not the variant)."""
        entry = self.variants.setdefault(variant, {"gates": {}, "failures": []})
        self.writes += 1
        if result.stored_format is not None:
            entry.setdefault("formats", {})[result.stored_format] = result.to_dict()
            return
        entry["gates"][name] = result.to_dict()
        entry["failures"].extend(f"{name}: {f}" for f in result.failures)

    def attach_artifact(self, variant: str, path: str, manifest: dict[str, Any],
                        runtime: dict[str, Any] | None = None) -> None:
        """Bind the variant's verdict to its artifact files (publish refuses files that changed since) and,
        when it was loaded in this process, to what it ran with (factory.runtime: read back from the runtime)."""
        entry = self.variants.setdefault(variant, {"gates": {}, "failures": []})
        entry["artifact"] = {"path": path, "files": manifest["files"], "load": manifest.get("load", {}),
                             "spec": manifest.get("spec", {})}
        if runtime:
            entry["runtime"] = runtime

    def export(self) -> dict[str, Any]:
        """What an xdist worker sends its controller (see merge)."""
        return {"header": self.header, "variants": self.variants,
                "scoring_seconds": self.header.get("scoring_seconds", {})}

    def merge(self, other: dict[str, Any], only: list[str] | None = None) -> None:
        """Fold in another process's results: an xdist worker's (each variant's tests ran in one worker:
        loadgroup) or a shard's (`quantgate merge`: `only` the variants it owns). The one merge of both paths.
        The controller runs no gate test, so it takes the header (candidate, data, threads) from a worker."""
        for key, value in other.get("header", {}).items():
            if key in ("finished", "resumed"):  # per process: the union
                mine = self.header.setdefault(key, [])
                mine.extend(v for v in value if v not in mine)
            elif key == "skipped":
                self.header.setdefault(key, {}).update(value)
            else:
                self.header.setdefault(key, value)
        for vid, entry in other.get("variants", {}).items():
            if only is not None and vid not in only:
                continue
            mine = self.variants.setdefault(vid, {"gates": {}, "failures": []})
            mine["gates"].update(entry.get("gates", {}))
            mine.setdefault("formats", {}).update(entry.get("formats", {}))
            mine["failures"].extend(f for f in entry.get("failures", []) if f not in mine["failures"])
            mine.update({k: v for k, v in entry.items()
                         if k not in ("gates", "formats", "failures", "decision", "passed")})
            if not mine["formats"]:
                del mine["formats"]
        self.header.setdefault("scoring_seconds", {}).update(other.get("scoring_seconds", {}))

    def to_dict(self, complete: bool) -> dict[str, Any]:
        variants = {}
        for vid, entry in self.variants.items():
            decision = decision_of(entry)
            variants[vid] = {**entry, "decision": decision, "passed": complete and decision == "pass"}
        return {
            "format": FORMAT,
            "complete": complete,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.header,
            "machine": {"cpu": machine.cpu_summary()},
            "libraries": machine.library_versions(backends.libraries()),
            "variants": variants,
        }

    def write(self, report_dir: str | Path, complete: bool, name: str = "verdict.json") -> Path:
        path = Path(report_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_dict(complete))
        return path
