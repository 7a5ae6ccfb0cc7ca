#!/bin/bash
# The gate's speed part on a CUDA machine, for one model; prints the GPU table and G-P3. (Agreement and quality
# need mteb and datasets, which the lent image lacks and which are too large to travel: issue #8 measured
# agreement there before quality joined it.)
#   scripts/gpu_run.sh MODEL_DIR DATA_DIR REPORT_DIR [more pytest options]
# The lent GPU machine has its own torch/transformers/sentence-transformers (docs/measurements.md) and no
# registry: quantgate goes in without its dependencies, from this checkout (its plugin is an entry point), and
# what the image lacks travels as wheels in .whl/ (platformdirs: `pip download --no-deps --python-version 3.12`).
set -o pipefail
model=$1 data=$2 report=$3
shift 3
mkdir -p "$report"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps .whl/*.whl || exit 1; fi
python3 -c "import quantgate.fixtures" 2>/dev/null ||
  python3 -m pip install -q --no-deps --no-build-isolation --no-index --ignore-requires-python -e . || exit 1
python3 -c "import torch, transformers, sentence_transformers as st, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__, 'tokenizers', tokenizers.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
python3 -m pytest gates/test_speed.py -p no:cacheprovider -q -rs \
  --candidate "$model" --gate-data "$data" --gate-device cuda --gate-dtype auto \
  --variants 'torch-*,onnx,onnx-O4' --gate-speed-sweep 1,32,128,512,auto --gate-speed-rounds 20 \
  --gate-cache /tmp/quantgate-cache --gate-report "$report" --benchmark-json="$report/benchmarks.json" "$@" \
  2>&1 | tee "$report/pytest.log" | grep -v "^[ .sF]*\[" | tail -40
python3 scripts/gpu_table.py "$report/verdict.json" | tee "$report/gpu-table.md"
