#!/bin/sh
# Checks that the Python side runs on PyTorch 2.x: Debian trixie's python3-torch (2.6) in a chroot,
# so nothing comes from PyPI. The tiny configurations train and export under it, the TypeScript
# runtime then reproduces that export's own parity fixtures, and the export test runs with its
# Python. Where that PyTorch has the dynamo exporter (with onnxscript), the tiny models are also
# exported with `export.py --exporter dynamo` and held to their fixtures. Needs root (debootstrap, chroot, bind mounts), about 2 GB of disk and network access to
# deb.debian.org on the first run; later runs reuse the chroot. Not part of CI.
#   sudo scripts/check-torch2.sh [chroot-dir]
# With PYTHON set, that Python is used instead of the chroot (any with torch 2.x, onnx and numpy,
# e.g. a virtual environment):
#   PYTHON=/opt/venv-torch2/bin/python scripts/check-torch2.sh
set -e
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
R=${1:-/opt/trixie}
here=$(cd "$(dirname "$0")/.." && pwd)

py="${PYTHON:-}"
wrapper=""
mounted=""
if [ -z "$py" ]; then
  if [ ! -x "$R/usr/bin/python3" ] || ! chroot "$R" python3 -c 'import torch, onnx' 2>/dev/null; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap
    [ -d "$R/usr" ] || debootstrap --variant=minbase trixie "$R" http://deb.debian.org/debian
    chroot "$R" sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-torch python3-onnx python3-numpy python3-pil libopenblas0-pthread'
  fi
  bind() {   # bind-mount $1 at the same path inside the chroot, once
    mkdir -p "$R$1"
    if ! mountpoint -q "$R$1"; then mount --bind "$1" "$R$1"; mounted="$R$1 $mounted"; fi
  }
  mountpoint -q "$R/proc" || { mount -t proc proc "$R/proc"; mounted="$R/proc $mounted"; }
  bind /tmp
  bind /usr/share/datasets
  bind "$here"
  wrapper="$(mktemp /tmp/python-torch2-XXXXXX)"
  printf '#!/bin/sh\nexec chroot %s /usr/bin/env -C "$PWD" python3 "$@"\n' "$R" > "$wrapper"
  chmod +x "$wrapper"
  py="$wrapper"
fi
out="$(mktemp -d /tmp/spn-torch2-XXXXXX)"
trap 'rm -rf "$out" $wrapper; for m in $mounted; do umount "$m"; done' EXIT
echo "PyTorch: $("$py" -c 'import torch, onnx; print(torch.__version__, "onnx", onnx.__version__)')"

cd "$here"
PYTHON="$py" scripts/build-tiny-models.sh "$out/runs" "$out/models"
npm run build
SPN_MODELS_DIR="$out/models" npx tap dist/test/runtime/parity.test.js
PYTHON="$py" npx tap dist/test/export/tiny-export.test.js
echo "PyTorch 2.x: tiny models trained, exported, and reproduced by the runtime"
# the same checkpoints through torch.onnx's dynamo exporter, where this PyTorch has it
if "$py" -c 'import inspect, sys, onnxscript, torch; sys.exit("dynamo" not in inspect.signature(torch.onnx.export).parameters)' 2>/dev/null; then
  for cfg in tiny-c1 tiny-c3; do
    "$py" scripts/export.py --exporter dynamo --config $cfg --runs "$out/runs" --models "$out/models-dynamo" > "$out/dynamo-$cfg.log" 2>&1 \
      || { cat "$out/dynamo-$cfg.log"; exit 1; }
    grep -v Warning "$out/dynamo-$cfg.log" | tail -3
  done
  SPN_MODELS_DIR="$out/models-dynamo" npx tap dist/test/runtime/parity.test.js
  echo "dynamo exporter: its graphs reproduce their fixtures too"
else
  echo "dynamo exporter: not in this PyTorch (it needs 2.6 or later and onnxscript); not checked"
fi
