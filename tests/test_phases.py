"""Speed phases: every speed benchmark splits its time into call / tokenize / transfer / forward /
post, reports end-to-end and model-only throughput, and a cost outside the phases shows as a gap."""

import json

import pytest

from quantgate.reporting.summary import recommendation
from quantgate.speed import phases
from quantgate.speed.phases import PHASES, PhaseTimer, back_to_back, phase_lines, raw_model
from tests.test_plugin import run_gate

pytestmark = pytest.mark.slow  # gate runs of minutes: CI's fresh-machine part leaves them to the full part

# How closely the phases cover a real variant's call (phase_sum_vs_e2e) is a measured figure, reported in summary.md
# and docs/measurements.md, not asserted: on a shared 2-core machine it moves with the load (an OpenVINO int8 call
# of 1.6 ms at batch 1 read 0.72 of the end-to-end minimum in one CI run, 0.9-1.0 in others; ONNX Runtime's
# spinning threads made its rounds bimodal, 0.74-1.58). A cost outside the phases is asserted where it is certain:
# the slowed mutant's sleep.
SLEEP = 0.05  # the slowed mutant's predict/encode sleep: time no phase sees


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    """One speed run on the embedded default (no ../shared): three real variants and a slowed mutant."""
    tmp = tmp_path_factory.mktemp("phases")
    result = run_gate("-q", "-k", "speed", "--variants", "torch-fp32,onnx,openvino-qint8,slowed",
                      "--gate-mutant", f"slowed=sleep:{SLEEP}", "--gate-speed-batch", "16", "--gate-speed-rounds", "5",
                      "--gate-latency-inputs", "20", "--gate-cache", str(tmp / "cache"),
                      "--gate-report", str(tmp / "report"), f"--benchmark-json={tmp / 'b.json'}")
    assert result.returncode == 0, result.stdout[-3000:]
    benchmarks = json.loads((tmp / "b.json").read_text())["benchmarks"]
    return tmp, {(b["extra_info"]["variant"], b["extra_info"]["batch_size"]): b for b in benchmarks}


def test_every_benchmark_has_its_phases_and_a_cost_outside_them_shows(timed):
    _, benchmarks = timed
    assert {v for v, _ in benchmarks} == {"torch-fp32", "onnx", "openvino-qint8", "slowed"}
    for (variant, batch), bench in benchmarks.items():
        info = bench["extra_info"]
        assert set(info["phases_ms"]) == set(PHASES) == set(info["phase_shares"]), info
        assert all(ms > 0 for ms in info["phases_ms"].values())
        assert sum(info["phase_shares"].values()) == pytest.approx(1, abs=1e-3)
        assert info["phase_rounds"] == (20 if batch == 1 else 5)
        assert info["e2e_items_per_s"] == pytest.approx(batch / bench["stats"]["median"], rel=1e-3)
        assert info["tokenize_tokens_per_s"] > 0 and info["padded_tokens_per_item"] >= info["mean_tokens_per_item"]
        # TOKENIZERS_PARALLELISM as the user's environment sets it (the gate reads it; the test must not assume it)
        assert info["tokenizer"]["fast"] and info["tokenizer"]["parallel"] == phases.parallel_encoding()[0]
        if variant == "slowed":
            # A cost outside the phases shows as the gap between the fastest call and the fastest phase sum: the
            # sleep, whatever the forward's own time (a coverage bound such as < 0.7 depends on the machine:
            # torch-fp32 at batch 16 on this 2-core VM read 0.73 in some runs, a 130 ms forward beside 50 ms).
            gap_s = bench["stats"]["min"] * (1 - info["phase_sum_vs_e2e"])
            assert gap_s > 0.5 * SLEEP, (batch, gap_s, info)
        assert info["phase_sum_vs_e2e"] > 0
        # On a CPU model-only is the forward phase of the same phase rounds, never a second timing: comparing it
        # with the end-to-end median of other rounds read 0.90 in a CI run (torch-fp32's forward is 98-99% of a
        # call, and the two medians came from different minutes of a shared 2-core machine).
        assert info["model_only_from"] == "the forward phase"
        forward_s = info["phases_ms"]["forward"] / 1000
        assert info["model_only_items_per_s"] == pytest.approx(batch / forward_s, rel=1e-3)
        assert info["phase_shares"]["forward"] < 1


def test_the_summary_says_where_the_time_goes(timed):
    tmp, benchmarks = timed
    summary = (tmp / "report" / "summary.md").read_text()
    table = summary.split("## Where the time goes")[1]
    said = "batch encoding in parallel" if phases.parallel_encoding()[0] else "TOKENIZERS_PARALLELISM off: sequential"
    assert said in table
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(benchmarks)
    fp32 = benchmarks[("torch-fp32", 16)]["extra_info"]
    assert f"| `torch-fp32` | 16 | {fp32['e2e_items_per_s']:.1f} | {fp32['model_only_items_per_s']:.1f} |" in table
    assert "(CPU" not in summary and "model-only" in summary.split("## Recommendation")[1].split("##")[0]


def _speed(batch, e2e, model_only, device):
    return {"batch_size": batch, "items_per_s": e2e, "model_only_items_per_s": model_only, "device": device}


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_large_batch_throughput_ranks_by_model_only_on_a_gpu(device):
    """Variant a is faster end to end, b faster model-only: the GPU ranks b, the CPU a; both figures shown."""
    from quantgate.reporting.summary import _rows

    rows = (("a", 3000.0, 9000.0), ("b", 2800.0, 20000.0))
    verdict = {"variants": {vid: {"passed": True, "gates": {"speed-b512": _speed(512, e, m, device)}}
                            for vid, e, m in rows}}
    line = recommendation(_rows(verdict))[0]
    best = "b" if device == "cuda" else "a"
    assert f"`{best}`" in line and ("ranked model-only" in line) == (device == "cuda")
    assert ("20000.0 model-only items/s (2800.0 items/s end to end)" in line) == (device == "cuda")
    assert ("3000.0 items/s end to end (9000.0 model-only)" in line) == (device == "cpu")


def test_the_raw_transformers_forward_runs_beside_the_gates_on_the_same_tensors(embedder_path):
    """On CPU too (the gate does it on CUDA only): a plain AutoModel of the same files, same tensors, the same
    function (its output equals the gate's token embeddings), timed alternately with the gate's forward."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedder_path), device="cpu")
    timer = PhaseTimer(model, "embedder", "cpu").run([["a lighthouse lens", "concentric glass rings"]] * 3)
    raw = raw_model(model, "embedder", "float32", "cpu")
    with torch.inference_mode():
        ours = model[0](dict(timer.features))["token_embeddings"]
        theirs = raw(input_ids=timer.features["input_ids"], attention_mask=timer.features["attention_mask"])
    assert torch.allclose(ours, theirs.last_hidden_state, atol=1e-5)
    seconds, facts = back_to_back(timer, rounds=3, raw=raw)
    assert seconds > 0 and facts["attention"] == facts["gate_attention"] and facts["rounds"] == 3
    assert facts["dtype"] == "float32" and facts["items_per_s"] > 0 and facts["gate_model_only_vs_raw"] > 0
    assert phase_lines({"variants": {}}) == []


def test_a_speed_record_reads_back_as_the_same_typed_result():
    from quantgate.speed.result import SpeedResult

    result = SpeedResult.measured(
        batch_size=1, median_s=0.004, tokens_per_item=12.34, reference_items_per_s=200.0, variant="onnx",
        candidate_sha256="c" * 64, kind="embedder", device="cpu", threads=2, rss_mb=900.0, peak_rss_mb=950.0,
        artifact_mb=86.1, machine="m", shard=None, gpu_peak_mb=None, dtype=None, inference_precision=None,
        phases={"phases_ms": {"tokenize": 0.5}, "phase_sum_vs_e2e": 0.97},
        percentiles={"latency_inputs": 20, "latency_ms_p50": 4.0, "latency_ms_p90": 4.4, "latency_ms_p99": 5.1})
    record = result.to_dict()
    assert record["items_per_s"] == 250.0 and record["speedup_vs_reference"] == 1.25
    assert record["latency_ms_median"] == 4.0 and record["tokens_per_s"] == pytest.approx(250.0 * 12.34, abs=0.05)
    assert record["phase_sum_vs_e2e"] == 0.97 and record["latency_ms_p99"] == 5.1 and "raw_forward" not in record
    assert SpeedResult.from_dict({**record, "passed": True, "failures": []}) == result
