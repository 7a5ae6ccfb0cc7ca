"""What the gate's OpenVINO settings cost: one IR compiled at bf16 five ways in one process (OpenVINO's defaults,
2 threads, CPU pinning off, both -- the gate's --, both + LATENCY hint), batch 32 of trec-dl19 pairs, timed
alternately, median of 7. From the repository root, with the reranker's `openvino` artifact in the cache:
    .venv/bin/python scripts/openvino_config_speed.py ~/.cache/quantgate/openvino-<hash> ../shared/data/trec-dl19
"""

import statistics
import sys
import time

from quantgate.backends import runtime_facts
from quantgate.core.candidate import load_model
from quantgate.evaluation.data import load as load_data
from quantgate.speed import bench

CONFIGS = {
    "defaults": {},
    "2 threads": {"INFERENCE_NUM_THREADS": "2"},
    "pinning off": {"ENABLE_CPU_PINNING": "NO"},
    "the gate's (both)": {"INFERENCE_NUM_THREADS": "2", "ENABLE_CPU_PINNING": "NO"},
    "both + LATENCY": {"INFERENCE_NUM_THREADS": "2", "ENABLE_CPU_PINNING": "NO", "PERFORMANCE_HINT": "LATENCY"},
}


def main(path: str, data: str, xml: str = "openvino/openvino_model.xml") -> None:
    items = bench.speed_items(load_data(data), "reranker", 32)
    models = {name: load_model(path, "reranker", "openvino", model_kwargs={
        "file_name": xml, "ov_config": {"INFERENCE_PRECISION_HINT": "bf16", **config}})
        for name, config in CONFIGS.items()}
    calls = {name: bench.make_call(model, "reranker", items, 32) for name, model in models.items()}
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(7):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        print(f"{name}: {32 / statistics.median(seconds):.1f} items/s ({runtime_facts(models[name])})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
