#!/usr/bin/env bash
# The benchmarks on a CUDA machine, with the optional kernels (mamba_ssm, causal_conv1d, flash_attn) on and off.
#
# Prerequisites: a CUDA GPU, `pip install -e ".[dev,cuda]"` (the kernels build against the installed torch).
# Launch:        bash benchmarks/gpu.sh            (results in benchmarks/results/gpu_auto.json, gpu_torch.json)
# It runs each comparison twice: ZOO_KERNELS=auto (CUDA kernels where installed) and ZOO_KERNELS=torch (our torch
# paths on the GPU), so the table shows what the fused kernels buy on top of the torch implementation.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY - <<'PY'
import torch, sys
if not torch.cuda.is_available():
    sys.exit("gpu.sh: no CUDA device visible")
from zoo.kernels import dispatch
print("device:", torch.cuda.get_device_name(), "| kernels:", dispatch.available())
PY
for backend in auto torch; do
  echo "===== kernels: $backend ====="
  $PY -m benchmarks._gpu_compare --backend "$backend"
done
