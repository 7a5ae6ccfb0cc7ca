"""Push to the Hugging Face Hub only what the verdict passed, bound to its files.

Refusals (one line each, non-zero exit, nothing pushed): an incomplete run, a candidate gated
against a baseline (--gate-baseline) without a decided pass of the regression gate, a variant that
failed or was not gated (agreement and quality are required; the reference needs quality),
a verdict made against other thresholds than the current file, an artifact whose files no
longer match the sha256 recorded in the verdict, two variants that would write different
files to one path. The token is read by huggingface_hub itself and never printed.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantgate.backends import weight_patterns
from quantgate.core.cache import strict
from quantgate.core.candidate import file_sha256
from quantgate.core.gates import Gate
from quantgate.core.results import RunResult
from quantgate.results.verdict import VerdictFormatError, only
from quantgate.results.verdict import read as read_verdict
from quantgate.variants.registry import REFERENCE_ID, ordered

REQUIRED_GATES = (Gate.AGREEMENT, Gate.QUALITY)


@dataclass
class Plan:
    variants: list[str]
    refusals: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # path in repo -> local file
    card: str = ""
    verdict_json: bytes = b""
    notes: list[str] = field(default_factory=list)  # variants left out of the default selection, and why


def plan(verdict: dict[str, Any], thresholds_file: str | Path | None, variants: list[str] | None) -> Plan:
    read = RunResult.from_dict(verdict)
    typed = read.variants
    # the decision is worked out again from the recorded gates (VariantResult.decision, its one place), not read
    # from the file's "decision" field: an edited field does not publish a variant
    decided = {vid: result.decision for vid, result in typed.items()}
    chosen = variants or ordered(v for v in typed if read.complete and decided[v] == "pass")
    result = Plan(chosen)
    if variants is None:
        result.notes += [f"not selected: {vid} ({decided[vid]})"
                         for vid in ordered(typed) if vid not in chosen]
    if not read.complete:
        result.refusals.append("the verdict comes from a run that did not finish: gate again")
    # the file the gate read (the verdict records its path): a team's thresholds.toml, or the packaged one when the
    # folder had none; given explicitly, another file must hold the same limits
    given, thresholds_file = thresholds_file, thresholds_file or read.thresholds_path
    if _thresholds_sha(thresholds_file) != read.thresholds_sha256:
        result.refusals.append(f"the verdict was gated against other thresholds than {thresholds_file}: gate again"
                               if given else f"{thresholds_file}, the thresholds file the verdict was gated against, "
                               "changed (or is gone) since: gate again")
    if not chosen:
        result.refusals.append("no variant passed the gate (decided pass): nothing to publish")
    result.refusals += _regression_refusals(verdict)
    for vid in list(chosen):
        found = typed.get(vid)
        if found is not None and found.family == "endpoint":
            why = f"{vid}: a served endpoint (its weights are the server's): nothing of it to publish"
            if variants is None:
                chosen.remove(vid)
                result.notes.append(f"not selected: {why}")
            else:
                result.refusals.append(why)
            continue
        if variants is None and found is not None and found.artifact:
            clash = _bind_files(vid, found.artifact, dict(result.files))
            if clash and all("would overwrite another variant's weights" in c for c in clash):
                chosen.remove(vid)
                result.notes.append(f"not selected: {vid} (its weights would replace another variant's in one repo; "
                                    f"publish it on its own with --variants {vid} to another repo)")
                continue
        if found is None:
            result.refusals.append(f"{vid}: not gated (absent from the verdict)")
            continue
        needed = [g for g in REQUIRED_GATES if not (vid == REFERENCE_ID and g == Gate.AGREEMENT)]
        missing = [g for g in needed if g not in found.gates]
        if missing:
            result.refusals.append(f"{vid}: not gated by {', '.join(missing)}")
        if decided[vid] == "inconclusive":
            result.refusals.append(f"{vid}: inconclusive (the data did not decide its quality loss; whatever "
                                   "[decision] inconclusive says, only decided passes are published)")
        elif decided[vid] != "pass":
            reasons = "; ".join(f.splitlines()[0] for f in found.failures) or "did not pass"
            result.refusals.append(f"{vid}: failed the gate ({reasons})")
        result.refusals += _bind_files(vid, found.artifact, result.files)
    if not result.refusals:
        result.refusals += _bind_ranges(verdict, chosen, result.files)
    if not result.refusals:
        result.card = model_card(verdict, chosen)
        result.verdict_json = json.dumps(strict(verdict), indent=2, sort_keys=True, allow_nan=False).encode()
    return result


def _regression_refusals(verdict: dict[str, Any]) -> list[str]:
    """A candidate gated against a baseline is published only on a decided pass of the regression gate."""
    read = RunResult.from_dict(verdict)
    baseline = read.baseline
    if not baseline:
        return []
    result = read.regression.numbers
    decision = result.get("decision")
    if decision == "pass":
        return []
    named = f"the baseline {baseline['source']} (sha256 {baseline['sha256'][:12]})"
    if decision is None:
        return [f"the verdict names {named} but the regression gate did not run: gate again, with test_regression"]
    detail = "; ".join([*read.regression.failures, *(
        f"{d['dataset']} {d['task']} {d['metric']} {d['decision']} (loss {d['loss']:+.2%})"
        for d in result.get("decisions", []) if d["decision"] != "pass")])
    if decision == "inconclusive":
        return [f"the candidate against {named} is inconclusive: only a decided pass is published ({detail})"]
    return [f"the candidate regressed against {named}: {detail}"]


def _thresholds_sha(path: str | Path | None) -> str:
    import hashlib

    if path is None or not Path(path).is_file():
        return hashlib.sha256(b"").hexdigest()
    return hashlib.sha256(Path(path).read_text(encoding="utf-8").encode()).hexdigest()


def _bind_files(vid: str, artifact: dict | None, files: dict[str, Path]) -> list[str]:
    if not artifact:
        return [f"{vid}: the verdict names no artifact files"]
    root, refusals = Path(artifact["path"]), []
    for rel, sha in sorted(artifact["files"].items()):
        if rel == "README.md":
            continue  # the card is written from the verdict
        local = root / rel
        if not local.is_file():
            refusals.append(f"{vid}: artifact file {rel} is missing from {root}")
        elif file_sha256(local) != sha:
            refusals.append(f"{vid}: artifact file {rel} changed since it was gated (sha256 differs)")
        elif rel in files and file_sha256(files[rel]) != sha:
            if _is_weights(rel):
                refusals.append(f"{vid}: {rel} would overwrite another variant's weights; publish them separately")
            # a config or tokenizer file that differs cosmetically (versions, dtype note): the first one stays
        else:
            files[rel] = local
    return refusals


def passed_formats(verdict: dict[str, Any], variants: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(variant, format, its first data set's record) of every stored format decided pass, for these variants."""
    read = RunResult.from_dict(verdict)
    return [(vid, fmt, payload["datasets"][0]) for vid in variants
            for fmt, payload in read.variant(vid).formats.items()
            if payload.get("decision") == "pass" and payload.get("datasets")]


def _bind_ranges(verdict: dict[str, Any], variants: list[str], files: dict[str, Path]) -> list[str]:
    """Each passed int8/uint8 format's ranges file, pushed beside the weights; refused when it changed since."""
    refusals = []
    for vid, fmt, record in passed_formats(verdict, variants):
        calibration = record.get("calibration") or {}
        if not calibration.get("ranges_file"):
            continue
        local = Path(calibration["ranges_file"])
        if not local.is_file() or file_sha256(local) != calibration.get("ranges_sha256"):
            refusals.append(f"{vid}@{fmt}: its ranges file {local} is missing or changed since it was gated: "
                            "gate again")
            continue
        files[f"quantgate/stored-formats/{vid}/{local.name}"] = local
    return refusals


def formats_card(verdict: dict[str, Any], variants: list[str]) -> str:
    """The stored formats that passed, with what reproduces each: precision, dimensions, rescoring, ranges file."""
    from quantgate.core.formats import parse

    rows = passed_formats(verdict, variants)
    if not rows:
        return ""
    out = ["## Stored formats that passed", "",
           "Encode with `truncate_dim` = the dimensions and `normalize_embeddings=True`, then "
           "`sentence_transformers.quantization.quantize_embeddings(embeddings, precision, ranges=numpy.load(file))`; "
           "with a rescore multiplier, retrieve multiplier × k from the quantized index and reorder by the float32 "
           "query against the stored vectors.", "",
           "| variant | format | precision | dimensions | rescore multiplier | ranges file | NDCG@10 loss vs float32 |",
           "|---|---|---|---:|---:|---|---:|"]
    for vid, fmt, r in rows:
        ranges = r.get("calibration", {}).get("ranges_file")
        where = f"`quantgate/stored-formats/{vid}/{Path(ranges).name}`" if ranges else "–"
        precision = parse(fmt).precision
        out.append(f"| `{vid}` | {fmt} | {precision} | {r['dimensions']} | {r.get('rescore_multiplier') or '–'} | "
                   f"{where} | {r['decisions'][0]['loss']:+.2%} |")
    return "\n".join(out) + "\n\n"


def _is_weights(rel: str) -> bool:
    """A weight file of any backend family (each names its own: quantgate.backends WEIGHT_FILES)."""
    return any(fnmatch.fnmatch(rel, pattern) for pattern in weight_patterns())


def model_card(verdict: dict[str, Any], variants: list[str]) -> str:
    """README.md: the gate's table and the results in the card's model-index format."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from quantgate.reporting.report import summary_markdown

    results, read = [], RunResult.from_dict(verdict)
    for vid in variants:
        for loss in read.variant(vid).numbers(Gate.QUALITY).get("decisions", []):
            results.append(EvalResult(
                task_type="text-ranking", task_name=f"{loss['task']} ({vid})",
                dataset_type=loss["dataset"], dataset_name=loss["dataset"], dataset_split="test",
                metric_type=loss["metric"], metric_value=round(loss["variant"], 5),
                metric_name=f"{loss['metric']} ({vid})",
            ))
    candidate = read.candidate
    data = ModelCardData(model_name=str(candidate.get("source", "model")), eval_results=results or None,
                         tags=["quantgate", "sentence-transformers", candidate.get("kind", "")],
                         library_name="sentence-transformers")
    subset = only(verdict, variants)
    body = (f"\n## quantgate\n\nVariants published here were decided **pass** by quantgate: agreement with the fp32 "
            "reference, and a quality loss whose one-sided upper bound is within the limit (sequential "
            f"non-inferiority test), on this machine.\n\n{formats_card(verdict, variants)}{summary_markdown(subset)}")
    return str(ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n" + body))


def operations(p: Plan) -> list:
    from huggingface_hub import CommitOperationAdd

    ops = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(local)) for rel, local in sorted(p.files.items())]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=p.card.encode("utf-8")))
    ops.append(CommitOperationAdd(path_in_repo="quantgate/verdict.json", path_or_fileobj=p.verdict_json))
    return ops


def publish(verdict_path: str | Path, repo_id: str, *, thresholds: str | Path | None = None,
            variants: list[str] | None = None, create_pr: bool = False, dry_run: bool = False, api=None,
            echo=print) -> int:
    try:
        verdict = read_verdict(verdict_path)
    except VerdictFormatError as err:
        echo(f"refused: {err}")
        return 1
    p = plan(verdict, thresholds, variants)
    if p.refusals:
        for line in p.refusals:
            echo(f"refused: {line}")
        return 1
    for note in p.notes:
        echo(note)
    ops = operations(p)
    echo(f"publishing {', '.join(p.variants)} to {repo_id}: {len(ops)} files"
         f"{' (dry run: nothing pushed)' if dry_run else ''}")
    for op in ops:
        echo(f"  + {op.path_in_repo}")
    if dry_run:
        return 0
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()  # reads the token as huggingface_hub does (HF_TOKEN or the saved login)
    try:
        api.create_repo(repo_id, exist_ok=True)
        info = api.create_commit(repo_id, operations=ops, create_pr=create_pr,
                                 commit_message=f"quantgate: publish {', '.join(p.variants)}")
    except Exception as err:  # huggingface_hub: OfflineModeIsEnabled, HfHubHTTPError, connection errors...
        from quantgate.logs import logger

        logger.exception("publish to %s failed", repo_id)  # the traceback to gate.log, never the token
        offline = type(err).__name__ == "OfflineModeIsEnabled" or "offline" in str(err).lower()
        echo(f"not published: {type(err).__name__}" + (
            " (HF_HUB_OFFLINE is set: nothing was pushed; unset it on a machine that reaches the hub, or use "
            "--dry-run to see what would be pushed)" if offline else
            f": {str(err).splitlines()[0][:200] if str(err) else 'no message'}; nothing was pushed"))
        return 1
    echo(f"pushed: {getattr(info, 'pr_url', None) or getattr(info, 'commit_url', info)}")
    return 0
