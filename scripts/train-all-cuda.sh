#!/bin/sh
# Trains the shipped models on one NVIDIA GPU: the three MU stages and the single-stage 8-bit SPN,
# all four at once (the stages train independently, each on the true planes), MINUTES of training
# each (default 6; evaluation of the validation images is not counted). Then, as train-all.sh, it
# evaluates on the test set and exports. The shipped models were made this way on an H200 with
# PyTorch 2.11 (about 31,000 steps of 32 images each in 6 minutes); train-all.sh is the two-core
# CPU path. Re-running resumes from checkpoints.
#   scripts/train-all-cuda.sh [runs-dir] [models-dir]
# The defaults are the repository's runs/ and models/: the shipped checkpoints and models are
# replaced. Name other folders to keep them; the sample grids go beside the models.
set -e
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
runs=${1:-runs}
models=${2:-models}
py=${PYTHON:-python3}
min=${MINUTES:-6}
here=$(dirname "$0")
mkdir -p "$runs"
pids=""
for stage in small size depth; do
  $py "$here/train.py" --config mu-fmnist --stage $stage --minutes "$min" --device cuda --threads 4 \
    --runs "$runs" > "$runs/mu-fmnist-$stage.log" 2>&1 &
  pids="$pids $!"
done
$py "$here/train.py" --config spn8-fmnist --stage full --minutes "$min" --device cuda --threads 4 \
  --runs "$runs" > "$runs/spn8-fmnist.log" 2>&1 &
pids="$pids $!"
fail=0
for pid in $pids; do wait "$pid" || fail=1; done   # (a POSIX sh's $(jobs -p) can be empty)
[ $fail = 0 ] || { echo "a training run failed: see $runs/*.log"; exit 1; }
for cfg in mu-fmnist spn8-fmnist; do
  $py "$here/evaluate.py" --config $cfg --runs "$runs"
  if [ "$models" = models ]; then grid="docs/samples-$cfg.png"; else grid="$models/samples-$cfg.png"; fi
  $py "$here/export.py" --config $cfg --runs "$runs" --models "$models" --grid "$grid"
done
