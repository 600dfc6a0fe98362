#!/bin/sh
# The check that the Python side runs on PyTorch 2.x with CUDA, for a machine with an NVIDIA GPU.
# Not part of CI (CI has no GPU). It
#   1. trains the tiny configurations (C = 1 and C = 3) on the GPU, evaluates them on the GPU and
#      exports them: bring OUT-DIR/models back and run the runtime's parity test on them
#      (SPN_MODELS_DIR=OUT-DIR/models npx tap dist/test/runtime/parity.test.js);
#   2. trains a shipped configuration (spn8-fmnist) on the GPU for FULL_MINUTES and evaluates it
#      on the first 2,000 test images;
#   3. runs scripts/check_ort_providers.py on the shipped models and on the tiny exports: the score
#      graph against PyTorch's fixtures, and CPU against CUDA provider where onnxruntime has it.
# Every step runs even when one before it failed; the exit status says whether any failed.
#   scripts/check-cuda.sh OUT-DIR
# Environment: PYTHON (default python3), SPN_DATA_DIR (Fashion-MNIST's IDX .gz files, default
# Debian's /usr/share/datasets/fashion-mnist), FULL_MINUTES (default 1.5), DEVICE (default cuda;
# cpu only to try the script out on a machine without a GPU).
set -u
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
out=${1:?usage: scripts/check-cuda.sh OUT-DIR}
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
fail=0
step() { echo "== $(date +%T) $*"; }
run() { "$@" || { echo "FAILED: $*"; fail=1; }; }

step environment
nvidia-smi -L
$py -c 'import torch, onnx, platform; print("python", platform.python_version(), "torch", torch.__version__,
  "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU", "onnx", onnx.__version__)'
dev=${DEVICE:-cuda}
[ "$dev" != cuda ] || $py -c 'import torch; assert torch.cuda.is_available()' || { echo "FAILED: PyTorch sees no CUDA device"; exit 1; }

step "tiny configurations on $dev: train, evaluate, export"
run env PYTHON="$py" DEVICE="$dev" "$here/build-tiny-models.sh" "$out/runs" "$out/models"
grep -h '"hardware"\|"torch"' "$out"/runs/tiny-c*/*/train.json | sort | uniq -c

step "spn8-fmnist on $dev for ${FULL_MINUTES:-1.5} min"
run $py "$here/train.py" --config spn8-fmnist --stage full --minutes "${FULL_MINUTES:-1.5}" --runs "$out/runs-full" --device "$dev"
run $py "$here/evaluate.py" --config spn8-fmnist --runs "$out/runs-full" --device "$dev" --limit 2000

step "onnxruntime providers: the shipped models"
run $py "$here/check_ort_providers.py" "$here/../models" --json "$out/ort-shipped.json"
step "onnxruntime providers: the tiny models trained on $dev"
run $py "$here/check_ort_providers.py" "$out/models" --json "$out/ort-tiny.json"
step "done, failures: $fail"
exit $fail
