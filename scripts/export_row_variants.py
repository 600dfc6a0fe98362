#!/usr/bin/python3
"""Writes both variants of each stage's sample_row graph, for `npm run bench:row-graph`:
<out>/<stage>/sample_row.unrolled.onnx and <out>/<stage>/sample_row.loop.onnx (see export.py).

  /usr/bin/python3 scripts/export_row_variants.py --config mu-fmnist --out /tmp/rows
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import load_stage  # noqa: E402
from export import export_sample_row  # noqa: E402
from spn.stages import load_config  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = load_config(args.config)
    C, h = cfg["channels"], cfg["image_size"] // cfg["subscale"]
    stages = []
    for st in cfg["stages"]:
        m = load_stage(cfg, st, args.runs)
        d = os.path.join(args.out, st["name"])
        os.makedirs(d, exist_ok=True)
        for variant in ("unrolled", "loop"):
            export_sample_row(m, os.path.join(d, f"sample_row.{variant}.onnx"), variant, 2, C, h, m.d)
        stages.append({"name": st["name"], "width": m.d, "upperLayers": len(m.upper_convs)})
    json.dump({"model": cfg["name"], "channels": C, "rowWidth": h, "stages": stages}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
