#!/bin/sh
# Would a wider or narrower network meet the sampling targets? Builds untrained copies of a shipped
# model with every stage's width scaled (rounded to a multiple of 8), exports them, and runs the main
# benchmark on them against PyTorch: the runtime's and PyTorch's speed do not depend on the weights
# (every pixel costs the same whatever is sampled), so no training is needed. The bits/dim in the
# report are those of untrained networks and mean nothing. About 10 minutes per model of four scales;
# it runs the compiled benchmark (`npm run build` first). With --configs it only writes the
# variants' configs into <out-dir>/configs/<model>-x<scale>.json, to train them with scripts/train.py.
#   scripts/experiment-width.sh <model> <scale,scale,...> <out-dir> [bench options...]
#   scripts/experiment-width.sh spn8-fmnist 0.6,1,1.6,2.4 docs/experiment-width/spn8-fmnist --trials 3
#   scripts/experiment-width.sh --configs mu-fmnist 0.5,1 /tmp/width
set -e
case "${1:-}" in -h|--help|'') awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
configs_only=0
if [ "$1" = --configs ]; then configs_only=1; shift; fi
model=$1
scales=$2
out=$3
shift 3
py=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
if [ $configs_only = 1 ]; then
  tmp=$out
  mkdir -p "$tmp/configs"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/configs" "$tmp/runs" "$tmp/models"
fi
names=$("$py" - "$here" "$model" "$scales" "$tmp" "$configs_only" <<'PY'
import json, os, sys
here, model, scales, tmp, configs_only = sys.argv[1:]
sys.path.insert(0, here)
import torch
from spn.model import spn_from_config
from spn.stages import load_config, stage_model_config
names = []
for s in scales.split(","):
    cfg = json.load(open(os.path.join(here, "configs", model + ".json")))
    widths = []
    for st in cfg["stages"]:
        st["net"]["width"] = max(8, round(st["net"]["width"] * float(s) / 8) * 8)
        widths.append(st["net"]["width"])
    name = f"{model}-x{s}"
    cfg["name"] = name
    cfg["description"] = f"{model} with every stage's width times {s} ({', '.join(map(str, widths))})" + ("" if configs_only == "1" else ", untrained")
    path = os.path.join(tmp, "configs", name + ".json")
    json.dump(cfg, open(path, "w"))
    print(f"{path}: widths {widths}", file=sys.stderr)
    names.append(name)
    if configs_only == "1":
        continue
    torch.manual_seed(0)
    cfg = load_config(path)
    for st in cfg["stages"]:
        m = spn_from_config(stage_model_config(cfg, st))
        os.makedirs(os.path.join(tmp, "runs", name, st["name"]), exist_ok=True)
        torch.save({"model": m.state_dict()}, os.path.join(tmp, "runs", name, st["name"], "best.pt"))
print(",".join(names))
PY
)
[ $configs_only = 1 ] && exit 0
for name in $(echo "$names" | tr ',' ' '); do
  "$py" "$here/export.py" --config "$tmp/configs/$name.json" --runs "$tmp/runs" --models "$tmp/models" --fixture-images 1 > "$tmp/export.log" 2>&1 \
    || { cat "$tmp/export.log"; exit 1; }
done
mkdir -p "$out"
SPN_CONFIGS="$tmp/configs" node "$here/../dist/scripts/bench.js" --models-dir "$tmp/models" --runs "$tmp/runs" --models "$names" \
  --setups 2x1 --decode row --out "$out" --json "$out/bench.json" "$@"
