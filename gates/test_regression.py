"""Regression gate: is the candidate worse than the model in production (--gate-baseline)? The candidate's
fp32 reference against the baseline per data set and metric, decided pass / fail / inconclusive against
thresholds.toml [regression] (quantgate.session.regression); and each variant's speed against the baseline's same
variant in this machine's pytest-benchmark history. Without --gate-baseline both skip."""

from __future__ import annotations

import pytest

from quantgate.core.results import GateResult
from quantgate.evaluation.quality import HubTaskError
from quantgate.evaluation.scoring import ScoreError
from quantgate.session import regression
from quantgate.speed import bench
from quantgate.variants.factory import BuildError

NO_BASELINE = "no --gate-baseline: pass the model in production (a directory, a hub id or its verdict.json)"


@pytest.mark.gate(after="reference", name="regression")
def test_regression(gate_session) -> GateResult:
    context = gate_session.context
    if context.baseline is None:
        pytest.skip(NO_BASELINE)
    if context.settings.shard and context.settings.shard[0] != 1:
        pytest.skip("the regression against the baseline is gated by shard 1")
    try:
        result = regression.run(context, gate_session.store, gate_session.evaluator)
    except (ScoreError, BuildError, HubTaskError) as err:
        return GateResult({"baseline": context.baseline.header(), "decision": "fail"}, (str(err),),
                          f"the baseline could not be gated: {err}", of_run="regression")
    failures, undecided = result.failures(), result.undecided()
    source = context.baseline.source
    return GateResult(result.to_dict(), tuple(failures),
                      f"the candidate is worse than the baseline {source}:\n  " + "\n  ".join(failures),
                      f"INCONCLUSIVE against the baseline {source} (the data do not decide whether the candidate "
                      "loses more than the limit):\n  " + "\n  ".join(undecided) if undecided else None,
                      of_run="regression")


@pytest.mark.gate(order=4, name="regression-speed")
def test_regression_speed(gate_session, variant_spec, speed_batch) -> GateResult:
    context = gate_session.context
    if context.baseline is None:
        pytest.skip(NO_BASELINE)
    label = f"b{speed_batch}" if speed_batch else "bauto"
    current = gate_session.run.speed.get((variant_spec.id, label))
    if current is None:
        pytest.skip(f"{variant_spec.id} was not timed at {label} in this run (the speed gate did not run)")
    batch = speed_batch or gate_session.run.auto_batches[variant_spec.id][0]
    compared = regression.speed(context, variant_spec.id, batch, current)
    if compared is None:
        pytest.skip(f"no speed history of the baseline's {variant_spec.id} at batch {batch} on this machine: gate "
                    "the baseline once here with --benchmark-autosave "
                    f"(storage {context.settings.benchmark_storage})")
    payload, failures = compared
    if not payload["decided"]:
        context.progress(f"{variant_spec.id} at batch {batch}: speed against the baseline not decided, "
                         f"{payload['baseline_runs']} run of the baseline on this machine (the rule needs "
                         f"{bench.MIN_RUNS} to know its spread): gate the baseline again with --benchmark-autosave")
    return GateResult(payload, tuple(failures))
