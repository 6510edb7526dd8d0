#!/usr/bin/env bash
# make gpu-check: the cuda half of numcnn's checks, on a machine with an NVIDIA GPU (under 8 minutes).
#
#   make gpu-check                      # with python3; GPU_PYTHON=... to use another interpreter
#
# Needs, in that interpreter: CuPy for the machine's CUDA, a CUDA build of PyTorch (the oracle
# and the baseline), pytest and hypothesis. It runs from the checkout (PYTHONPATH=src), so
# nothing needs installing. Results go to $GPU_OUT (default build/gpu-check), replacing those of
# a run before.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${GPU_PYTHON:-python3}
OUT=${GPU_OUT:-build/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
step() { echo; echo "== $*"; "$@" || status=1; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
"$PY" -c "import cupy, torch, numpy; print('cupy', cupy.__version__, '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), '| torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), '| numpy', numpy.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"

# Parity on the GPU against PyTorch CUDA and numcnn on the CPU; the loss curve against the CPU's.
step "$PY" -m pytest -o addopts=-q -m cuda -p no:cacheprovider tests/test_layers.py tests/test_device.py
# The layer table at batch 256, training steps, DeepConvNet memory, epochs.
step "$PY" -m numcnn bench --device cuda --dtype float32 --mode fwdbwd --batch 256 --rounds 3 --json "$OUT/bench.json" --overwrite
step "$PY" -m numcnn bench --device cuda --memory --json "$OUT/memory.json" --overwrite
step "$PY" -m numcnn bench --device cuda --epoch --json "$OUT/epoch.json" --overwrite
step "$PY" scripts/gpu_epochs.py --json "$OUT/epochs.json"
echo; echo "gpu-check: $([ $status = 0 ] && echo passed || echo FAILED); results in $OUT"
exit $status
