#!/bin/sh
# Trains the tiny test configurations (C = 1 and C = 3) for a few steps and exports them.
#   scripts/build-tiny-models.sh [runs-dir] [models-dir]
# DEVICE (e.g. cuda) is passed to training and evaluation; by default they pick CUDA when present.
set -e
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
runs=${1:-runs}
models=${2:-models}
py=${PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
for cfg in tiny-c1 tiny-c3; do
  for stage in small size depth; do
    $py "$here/train.py" --config $cfg --stage $stage --steps 60 --runs "$runs" --threads 1 ${DEVICE:+--device "$DEVICE"}
  done
  $py "$here/evaluate.py" --config $cfg --runs "$runs" ${DEVICE:+--device "$DEVICE"}
  $py "$here/export.py" --config $cfg --runs "$runs" --models "$models"
done
