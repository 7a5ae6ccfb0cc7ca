#!/bin/bash
# The gate's agreement and speed parts on a CUDA machine, for one model; prints the GPU table.
#   scripts/gpu_run.sh MODEL_DIR DATA_DIR REPORT_DIR
# (docs/measurements.md: how the lent GPU ran it, with fp16 copies of the models: they travel as files)
set -o pipefail
model=$1 data=$2 report=$3
mkdir -p "$report"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__, torch.cuda.get_device_name())"
python3 -m pytest gates/test_agreement.py gates/test_speed.py -p no:cacheprovider -q -rs \
  --candidate "$model" --gate-data "$data" --gate-device cuda --gate-dtype auto \
  --variants 'torch-*,onnx,onnx-O4' --gate-speed-sweep 1,32,128,512,auto --gate-speed-rounds 20 \
  --gate-cache /tmp/quantgate-cache --gate-report "$report" --benchmark-json="$report/benchmarks.json"
python3 scripts/gpu_table.py "$report/verdict.json" | tee "$report/gpu-table.md"
