"""thresholds.toml: the single source of every limit the gate enforces.

Precedence lives here and only here (Thresholds.chosen): command line > thresholds.toml > built-in defaults. Per-variant
overrides are keyed by a variant id or a glob; an exact id wins over a glob, and later globs win over earlier ones.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantgate.core.formats import PRECISIONS, parse
from quantgate.core.metrics import AGREEMENT_METRICS, QUALITY, agreement_defaults
from quantgate.errors import QuantgateUsageError

QUALITY_KEYS = {m.limit_key: float for m in QUALITY.values()}
# keys of earlier thresholds files, and what replaced them (one clear error instead of a silent change)
REPLACED = {
    "quality.rule": "decisions are now pass/fail/inconclusive from one-sided bounds: set [decision] "
                    "inconclusive = \"fail\" or \"pass\" and delete quality.rule",
    "quality.bootstrap_resamples": "the interval is now a paired t (Fieller) bound, no bootstrap: delete it",
    "quality.seed": "the seed of the query order is [decision] seed: move it there",
}
DEFAULTS: dict[str, Any] = {
    "agreement": {kind: agreement_defaults(kind) for kind in ("reranker", "embedder")},
    "quality": {m.limit_key: m.reranker for m in QUALITY.values()},
    "decision": {"confidence": 0.97, "inconclusive": "fail", "first_look": 20, "min_queries": 100, "seed": 0},
    "speed": {"regression_pct": 10.0, "spread_multiple": 3.0, "history_runs": 5},
    "regression": {"max_loss": 0.005, "require_gain": False, "min_gain": 0.0},
    "calibration": {"samples": 300, "seed": 0},
    "accuracy_control": {"validation_queries": 100, "validation_candidates": 20, "max_trials": 8,
                         "ranking_queries": 10, "min_validation_queries": 40},
    "embedding_formats": {"rescore_multiplier": 4, "calibration_min": 100, "max_loss": {  # each precision's own
        **{k: v for p in PRECISIONS.values() for k, v in ((p.name, p.max_loss), (p.name + "-rescore",
                                                              p.rescore_max_loss)) if v is not None},
        "truncation": 0.03}},  # and a cut's (dimN), added to its precision's
}
# each table's keys and their types: its defaults' (a float default takes a float, a bool a bool)
DECISION_KEYS, SPEED_KEYS, REGRESSION_KEYS, CALIBRATION_KEYS, ACCURACY_CONTROL_KEYS, FORMAT_KEYS = (
    {k: type(v) for k, v in DEFAULTS[section].items() if not isinstance(v, dict)} for section in
    ("decision", "speed", "regression", "calibration", "accuracy_control", "embedding_formats"))


# What a value may be, by where it is written: a relative loss is a fraction below 1 (0.01 = 1%; 5.0 would pass
# anything); a "min" agreement metric (tau, overlap, cosine) is at most 1; nan removes an agreement limit only.
RELATIVE = {"upper": 1.0, "closed": False}
AT_MOST_ONE = {"upper": 1.0, "closed": True, "nan": True}
COUNTS = {"decision": ("first_look", "min_queries"), "speed": ("history_runs",), "calibration": ("samples",)}


class ThresholdsError(QuantgateUsageError):
    """thresholds.toml is malformed; the message names the file, line and key."""


@dataclass(frozen=True)
class Thresholds:
    path: Path | None
    sha256: str
    agreement: dict[str, dict[str, float]]  # kind -> metric -> limit
    quality: dict[str, Any]
    speed: dict[str, Any]
    calibration: dict[str, Any]
    decision: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS["decision"]))
    accuracy_control: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS["accuracy_control"]))
    variants: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # pattern -> section -> metric
    regression: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS["regression"]))
    embedding_formats: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS["embedding_formats"]))
    prompts: dict[str, str] | None = None  # [prompts]: a team's production prompts by role (None: the model's)

    def format_limit(self, fmt) -> float:
        """A stored format's relative NDCG@10 loss limit against the float32 vectors of the same variant: its id's
        own [embedding_formats.max_loss] key when there is one (e.g. "dim256-int8"), else its precision's
        (with -rescore) plus `truncation` when it cuts dimensions."""
        limits = self.embedding_formats["max_loss"]
        if fmt.id in limits:
            return limits[fmt.id]
        own = fmt.kind.rescore_max_loss if fmt.rescore else fmt.kind.max_loss  # a precision registered since
        return limits.get(fmt.precision + ("-rescore" if fmt.rescore else ""), own) + \
            (limits["truncation"] if fmt.dim else 0.0)

    @property
    def regression_limit(self) -> float:
        """The candidate's relative loss against the baseline it may have, every metric: max_loss, or with
        require_gain the negative of min_gain (a decided pass then needs a decided gain of at least min_gain)."""
        r = self.regression
        return -r["min_gain"] if r["require_gain"] else r["max_loss"]

    def agreement_limits(self, variant_id: str, kind: str) -> dict[str, float]:
        limits = dict(self.agreement[kind])
        for pattern in self._matching(variant_id):
            for metric, value in self.variants[pattern].get("agreement", {}).items():
                limits[metric] = value
        return {m: v for m, v in limits.items() if not (isinstance(v, float) and math.isnan(v))}

    def quality_limits(self, variant_id: str) -> dict[str, Any]:
        limits = dict(self.quality)
        for pattern in self._matching(variant_id):
            limits.update(self.variants[pattern].get("quality", {}))
        return limits

    def _matching(self, variant_id: str) -> list[str]:
        globs = [p for p in self.variants if p != variant_id and fnmatch.fnmatchcase(variant_id, p)]
        return globs + ([variant_id] if variant_id in self.variants else [])

    def chosen(self, given: Any, section: str, key: str | None = None) -> tuple[Any, str | None]:
        """The precedence, applied here only: the command line's value (`given`; None: not given) over this file's
        `section` (its `key`; absent, the built-in default): (value, where it came from)."""
        if given is not None:
            return given, "the command line"
        value = getattr(self, section) if key is None else getattr(self, section)[key]
        return value, None if value is None else f"thresholds.toml [{section}]"

    def check_patterns(self, known: list[str]) -> None:
        """Every [variants."PATTERN"] table names a variant the gate knows: a typo in a pattern would leave the
        defaults in force without a word."""
        for pattern in self.variants:
            if not fnmatch.filter(known, pattern):
                raise ThresholdsError(f"{self.path}: [variants.\"{pattern}\"] matches no variant id (known: "
                                      f"{', '.join(known)}); correct the pattern or delete the table")


# The project's thresholds.toml, in the package (a link): a run from a model's own repository gets the same limits
PACKAGED_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"


def default_thresholds_path(rootdir: str | Path) -> Path:
    """thresholds.toml in the pytest rootdir when there is one (a team's own limits), else the packaged one."""
    return local if (local := Path(rootdir) / "thresholds.toml").is_file() else PACKAGED_THRESHOLDS


def load_thresholds(path: str | Path | None) -> Thresholds:
    if path is None:
        return _build(None, "", {})
    path = Path(path)
    if not path.is_file():
        raise ThresholdsError(f"{path}: thresholds file not found; pass --gate-thresholds PATH or create it")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ThresholdsError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                              "save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ThresholdsError(f"{path}: not valid TOML: {err}") from None
    return _build(path, text, data)


def _build(path: Path | None, text: str, data: dict[str, Any]) -> Thresholds:
    where = _Locator(path, text)
    sections = {"agreement", "quality", "decision", "speed", "regression", "calibration", "accuracy_control",
                "variants", "embedding_formats", "prompts"}
    _known(where, data, sections, "")
    for key, why in REPLACED.items():
        section, name = key.split(".")
        if name in data.get(section, {}) or any(name in v.get(section, {}) for v in data.get("variants", {}).values()
                                                 if isinstance(v, dict)):
            raise ThresholdsError(where(key, why))
    agreement = {kind: dict(limits) for kind, limits in DEFAULTS["agreement"].items()}
    for kind, limits in data.get("agreement", {}).items():
        if kind not in agreement:
            raise ThresholdsError(where(f"agreement.{kind}",
                                        "unknown kind; use [agreement.reranker] or [agreement.embedder]"))
        agreement[kind].update(_agreement(where, f"agreement.{kind}", limits))
    quality = {**DEFAULTS["quality"], **_typed(where, "quality", data.get("quality", {}), QUALITY_KEYS, RELATIVE)}
    decision = {**DEFAULTS["decision"], **_typed(where, "decision", data.get("decision", {}), DECISION_KEYS)}
    if decision["inconclusive"] not in ("fail", "pass"):
        raise ThresholdsError(where("decision.inconclusive",
                                   f"must be \"fail\" or \"pass\", not {decision['inconclusive']!r}"))
    if not 0.5 < decision["confidence"] < 1:
        raise ThresholdsError(where("decision.confidence", f"must be between 0.5 and 1, got {decision['confidence']}"))
    if decision["first_look"] < 2:
        raise ThresholdsError(where("decision.first_look", f"must be at least 2 queries, got {decision['first_look']}"))
    speed = {**DEFAULTS["speed"], **_typed(where, "speed", data.get("speed", {}), SPEED_KEYS)}
    regression = {**DEFAULTS["regression"],
                  **_typed(where, "regression", data.get("regression", {}), REGRESSION_KEYS, RELATIVE)}
    calibration = {**DEFAULTS["calibration"],
                   **_typed(where, "calibration", data.get("calibration", {}), CALIBRATION_KEYS)}
    accuracy_control = {**DEFAULTS["accuracy_control"],
                        **_typed(where, "accuracy_control", data.get("accuracy_control", {}), ACCURACY_CONTROL_KEYS)}
    counts = {"accuracy_control": accuracy_control, "decision": decision, "speed": speed, "calibration": calibration}
    for section, values in counts.items():
        for key in COUNTS.get(section, tuple(values)):
            if values[key] < 1:
                raise ThresholdsError(where(f"{section}.{key}", f"must be at least 1, got {values[key]}"))
    embedding_formats = _embedding_formats(where, data.get("embedding_formats", {}))
    variants: dict[str, dict[str, dict[str, float]]] = {}
    for pattern, sections in data.get("variants", {}).items():
        if not isinstance(sections, dict):
            raise ThresholdsError(where(f"variants.{pattern}", "must be a table with agreement/quality sub-tables"))
        _known(where, sections, {"agreement", "quality"}, f"variants.{pattern}.")
        variants[pattern] = {
            "agreement": _agreement(where, f'variants."{pattern}".agreement', sections.get("agreement", {})),
            "quality": _typed(where, f'variants."{pattern}".quality', sections.get("quality", {}), QUALITY_KEYS,
                              RELATIVE),
        }
    # [prompts] query = "...", document = "...": what production sends before each role's text ("" for none)
    prompts = _typed(where, "prompts", data["prompts"], {"query": str, "document": str}) if "prompts" in data else None
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Thresholds(path, digest, agreement, quality, speed, calibration, decision, accuracy_control, variants,
                      regression, embedding_formats, prompts)


def _embedding_formats(where: _Locator, values: Any) -> dict[str, Any]:
    """[embedding_formats] and its [embedding_formats.max_loss] table: keys are the precisions (with -rescore),
    `truncation`, or whole format ids (quantgate.evaluation.formats)."""

    if not isinstance(values, dict):
        raise ThresholdsError(where("embedding_formats", "must be a table"))
    losses = values.get("max_loss", {})
    out = {**DEFAULTS["embedding_formats"],
           **_typed(where, "embedding_formats", {k: v for k, v in values.items() if k != "max_loss"}, FORMAT_KEYS)}
    for key in FORMAT_KEYS:
        if out[key] < 1:
            raise ThresholdsError(where(f"embedding_formats.{key}", f"must be at least 1, got {out[key]}"))
    if not isinstance(losses, dict):
        raise ThresholdsError(where("embedding_formats.max_loss", "must be a table of format = relative loss"))
    max_loss = dict(DEFAULTS["embedding_formats"]["max_loss"])
    for key, value in losses.items():
        if key not in DEFAULTS["embedding_formats"]["max_loss"]:
            try:
                parse(key)
            except ValueError as err:
                raise ThresholdsError(where(f"embedding_formats.max_loss.{key}", str(err))) from None
        max_loss[key] = _number(where, f"embedding_formats.max_loss.{key}", value, **RELATIVE)
    return {**out, "max_loss": max_loss}


def _agreement(where: _Locator, section: str, limits: Any) -> dict[str, float]:
    if not isinstance(limits, dict):
        raise ThresholdsError(where(section, "must be a table of metric = number"))
    out = {}
    for metric, value in limits.items():
        if metric not in AGREEMENT_METRICS:
            raise ThresholdsError(where(f"{section}.{metric}",
                                        f"unknown metric; known: {', '.join(AGREEMENT_METRICS)}"))
        bounds = AT_MOST_ONE if AGREEMENT_METRICS[metric] == "min" else {"nan": True}
        out[metric] = _number(where, f"{section}.{metric}", value, **bounds)
    return out


def _typed(where: _Locator, section: str, values: Any, schema: dict[str, type],
           bounds: dict[str, Any] | None = None) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ThresholdsError(where(section, "must be a table"))
    out = {}
    for key, value in values.items():
        if key not in schema:
            raise ThresholdsError(where(f"{section}.{key}", f"unknown key; known: {', '.join(schema)}"))
        wanted = schema[key]
        if wanted is float:
            out[key] = _number(where, f"{section}.{key}", value, **(bounds or {}))
        elif not isinstance(value, wanted) or (isinstance(value, bool) and wanted is not bool):
            raise ThresholdsError(where(f"{section}.{key}", f"must be {wanted.__name__}, got {value!r}"))
        else:
            out[key] = value
    return out


def _number(where: _Locator, key: str, value: Any, upper: float | None = None, closed: bool = True,
            nan: bool = False) -> float:
    """A finite number >= 0 (and <= or < `upper`); nan only where it removes a limit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ThresholdsError(where(key, f"must be a number, got {value!r}"))
    if math.isnan(value) and nan:
        return float(value)
    if upper is None:
        ok, wanted = math.isfinite(value) and value >= 0, "a finite number >= 0"
    else:
        ok = value >= 0 and (value <= upper if closed else value < upper)
        wanted = (f"a number from 0 to {upper:g}" if closed
                  else f"a number from 0 below {upper:g} (a fraction: 0.01 = 1%)")
    if not ok:
        raise ThresholdsError(where(key, f"must be {wanted}, got {value!r}"))
    return float(value)


def _known(where: _Locator, data: dict, allowed: set[str], prefix: str) -> None:
    if unknown := next((key for key in data if key not in allowed), None):
        raise ThresholdsError(where(f"{prefix}{unknown}", f"unknown section; known: {', '.join(sorted(allowed))}"))


class _Locator:
    """Formats 'file:line: key: message', finding the line where the key is written."""

    def __init__(self, path: Path | None, text: str):
        self.path, self.lines = path, text.splitlines()

    def __call__(self, key: str, message: str) -> str:
        leaf = key.rsplit(".", 1)[-1].strip('"')
        starts = (leaf, f'"{leaf}"', f"[{key}")
        line = next((i for i, text in enumerate(self.lines, 1) if text.strip().startswith(starts)), None)
        place = f"{self.path}:{line}" if line else str(self.path or "defaults")
        return f"{place}: {key}: {message}"
