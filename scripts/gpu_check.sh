#!/usr/bin/env bash
# The GPU check: tests marked `gpu`, the serving benchmark on CUDA (half precision), a retrain.
# On a machine with an NVIDIA GPU, Python 3.12, torch and transformers and no network, with the
# wheels and the fp16 encoder that scripts/gpu_prepare.sh made (carried as .whl and .encoder):
#   scripts/gpu_check.sh            # results land in $OUT (default ./gpu-results)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1
export TUNELOOP_MODEL=$PWD/.encoder TUNELOOP_DEVICE=cuda PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
  | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -m gpu tests/gpu 2>&1 | tee "$OUT/gpu_tests.txt"
python3 -m tuneloop.cli bench --json "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench_gpu.txt"
python3 -m benchmarks.retrain --json "$OUT/retrain_gpu.json" 2>&1 \
  | tee "$OUT/retrain_gpu.txt"
