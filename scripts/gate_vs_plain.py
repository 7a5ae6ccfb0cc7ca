"""Gate-loaded variant vs the same artifact loaded by plain sentence-transformers (the no-handicap
ratio of issue 5), reranker on trec-dl19 pairs, batch 32, median of 5. Run from the repository root:
    .venv/bin/python scripts/gate_vs_plain.py
Requires ../shared and a warm cache (pytest gates/ ... --candidate ../shared/models/minilm-l6-scifact-reranker).
"""
import time, gc
from sentence_transformers import CrossEncoder
from quantgate.session import GateSession, GateSettings
from quantgate.registry import VARIANTS
from quantgate import bench
g = GateSession(GateSettings(candidate="../shared/models/minilm-l6-scifact-reranker", data=("../shared/data/trec-dl19",), thresholds=None))
items = bench.speed_items(g.datasets[0], "reranker", 32)
def t(m):
    c = bench.make_call(m, "reranker", items, 32); c(); ts=[]
    for _ in range(5):
        s=time.perf_counter(); c(); ts.append(time.perf_counter()-s)
    return 32/sorted(ts)[2]
for vid in [v for v in VARIANTS if v not in ("onnx-O4","torch-fp16")]:
    spec = VARIANTS[vid]; art = g.factory.artifact(spec); info = art.load_info
    ours = g.factory.load(spec)
    if vid == "inc-int8":
        plain = None
    elif info["backend"] == "torch":
        import torch
        plain = CrossEncoder(str(art.path), model_kwargs={"torch_dtype": getattr(torch, info["torch_dtype"])})
    else:
        plain = CrossEncoder(str(art.path), backend=info["backend"], model_kwargs={"file_name": info["file_name"]})
    a = t(ours); b = t(plain) if plain else float("nan"); a2 = t(ours)
    print(f"| {vid} | {max(a,a2):.1f} | {b:.1f} | {max(a,a2)/b:.2f} |", flush=True)
    g.factory._models.clear(); del plain, ours; gc.collect()
