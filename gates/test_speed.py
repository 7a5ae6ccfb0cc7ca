"""Speed gate: latency (batch 1) and throughput (batch N) of every variant with pytest-benchmark,
on real inputs from the evaluation data. Latency is one different input per timed round (many rounds:
p50/p90/p99 as users feel them); throughput is the same batch of N items each round. Nothing here
asserts a wall-clock number; with --gate-speed-compare a variant fails when it is slower than its own
history on this machine."""

from __future__ import annotations

import pytest

from quantgate.core import memory
from quantgate.core.cache import strict
from quantgate.core.results import GateResult
from quantgate.fixtures.outcomes import replayed, same_model
from quantgate.speed import bench
from quantgate.speed.phases import PhaseTimer
from quantgate.speed.result import SpeedResult
from quantgate.variants.registry import REFERENCE_ID


@pytest.mark.gate(order=3, name="speed")
def test_speed(gate_session, variant_spec, speed_batch, benchmark) -> GateResult | None:
    context = gate_session.context
    if benchmark.disabled:
        pytest.skip("pytest-benchmark is disabled (it is under pytest-xdist: parallel timings are not measurements); "
                    "run gates/test_speed.py without -n")
    label = f"b{speed_batch}" if speed_batch else "bauto"
    if (saved := replayed(gate_session, variant_spec, f"speed-{label}")) is not None \
            or (saved := same_model(gate_session, variant_spec, f"speed-{label}")) is not None:
        gate_session.run.speed[(variant_spec.id, label)] = saved["items_per_s"]  # later speedups compare with it
        return None
    model = gate_session.factory.load(variant_spec)
    kind = context.candidate.kind
    search = None
    if speed_batch == 0:  # --gate-speed-batch auto
        speed_batch, search = gate_session.auto_batch(variant_spec)
    latency = speed_batch == 1
    dataset = context.evaluation_sets()[0]
    benchmark.group = f"{'latency' if latency else 'throughput'} batch {label.removeprefix('b')}"
    bench.reset_gpu_peak(context.device)
    if latency:
        items = bench.latency_items(dataset, kind, context.settings.latency_inputs,
                                    context.thresholds.decision["seed"])
        target, setup = bench.one_at_a_time(model, kind, items)
        # Warm-up: every input once, as a server is warm. OpenVINO's CPU plugin prepares each new input shape on
        # first sight and caches it: measured 8.1 ms per first-seen length vs 1.4 ms after (openvino-qint8, the
        # embedded embedder), which a one-round warm-up left in the latency of record.
        benchmark.pedantic(target, setup=setup, rounds=len(items), warmup_rounds=len(items), iterations=1)
        phases = PhaseTimer(model, kind, context.device, skip=0).run([[item] for item in items])  # the same order
    else:
        items = bench.speed_items(dataset, kind, speed_batch)
        # The same batch every round: its phases are timed in pytest-benchmark's untimed setup before each round
        # (the warm-up's discarded), so what disturbs a stretch of rounds disturbs both alike.
        phases = PhaseTimer(model, kind, context.device)
        benchmark.pedantic(bench.make_call(model, kind, items, speed_batch), setup=lambda: phases.time_round(items),
                           rounds=context.settings.speed_rounds, warmup_rounds=1, iterations=1)

    gpu_peak = bench.gpu_peak_mb(context.device)  # before the raw baseline adds its own copy of the weights
    steady, raw = bench.model_only(context, gate_session.factory, variant_spec, model, phases)
    median = benchmark.stats.stats.median
    # kept before the result is made: later variants' speedups compare with it, the reference's own reads 1.0
    gate_session.run.speed[(variant_spec.id, label)] = speed_batch / median
    artifact = gate_session.factory.artifact(variant_spec)
    result = SpeedResult.measured(
        batch_size=speed_batch, median_s=median, tokens_per_item=phases.mean_tokens(speed_batch),
        reference_items_per_s=gate_session.run.speed.get((REFERENCE_ID, label)),
        variant=variant_spec.id, candidate_sha256=context.candidate.content_hash, kind=kind,
        device=context.device, threads=context.threads, rss_mb=round(memory.rss() / memory.MB, 1),
        peak_rss_mb=round(gate_session.run.sampler.peak / memory.MB, 1),
        artifact_mb=round(artifact.size_bytes / 2**20, 2),
        machine=bench.machine_key(), shard=context.settings.shard[0] if context.settings.shard else None,
        gpu_peak_mb=gpu_peak, dtype=artifact.load_info.get("torch_dtype"),
        # OpenVINO's, read back from the compiled model
        inference_precision=gate_session.factory.runtime.get(variant_spec.id, {}).get("inference_precision"),
        phases=phases.summary(speed_batch, median, benchmark.stats.stats.min, steady),
        percentiles=bench.percentiles(benchmark.stats.stats.data) if latency else {},
        raw_forward=raw or None, auto_batch_search=search)
    benchmark.extra_info.update(strict(result.to_dict()))  # pytest-benchmark writes it as JSON too
    failures = []
    if context.settings.speed_compare:
        limits = context.thresholds.speed
        found = bench.regression(context.speed_history, variant_spec.id, speed_batch, result.items_per_s,
                                 runs=limits["history_runs"], pct=limits["regression_pct"],
                                 spread_multiple=limits["spread_multiple"])
        if found:
            failures.append(found.message())
    return GateResult(result.to_dict(), tuple(failures))
