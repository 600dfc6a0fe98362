#!/bin/sh
# Trains, evaluates and exports the shipped models from scratch, then draws their sample grids.
# About 75 minutes on a two-core machine: the three MU stages one after another on one core, the
# single-stage 8-bit SPN (same training time) on the other. Re-running resumes from checkpoints.
#   scripts/train-all.sh [runs-dir] [models-dir]
# The defaults are the repository's runs/ and models/: the shipped (GPU-trained) checkpoints and
# models are replaced. Name other folders to keep them; the sample grids go beside the models.
set -e
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
runs=${1:-runs}
models=${2:-models}
py=${PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
mkdir -p "$runs"
( $py "$here/train.py" --config mu-fmnist --stage small --minutes 10 --threads 1 --runs "$runs" &&
  $py "$here/train.py" --config mu-fmnist --stage size --minutes 17 --threads 1 --runs "$runs" &&
  $py "$here/train.py" --config mu-fmnist --stage depth --minutes 45 --threads 1 --runs "$runs" ) > "$runs/mu-fmnist.log" 2>&1 &
mu=$!
$py "$here/train.py" --config spn8-fmnist --stage full --minutes 72 --threads 1 --runs "$runs" > "$runs/spn8-fmnist.log" 2>&1 &
spn8=$!
fail=0
for pid in $mu $spn8; do wait "$pid" || fail=1; done   # both finish, even when one fails
[ $fail = 0 ] || { echo "a training run failed: see $runs/mu-fmnist.log and $runs/spn8-fmnist.log"; exit 1; }
for cfg in mu-fmnist spn8-fmnist; do
  $py "$here/evaluate.py" --config $cfg --runs "$runs"
  if [ "$models" = models ]; then grid="docs/samples-$cfg.png"; else grid="$models/samples-$cfg.png"; fi
  $py "$here/export.py" --config $cfg --runs "$runs" --models "$models" --grid "$grid"
done
