#!/usr/bin/python3
"""Writes both variants of each stage's sample_row graph, for `npm run bench:row-graph`:
<out>/<stage>/sample_row.unrolled.onnx and <out>/<stage>/sample_row.loop.onnx (see export.py).

  /usr/bin/python3 scripts/export_row_variants.py --config mu-fmnist --out /tmp/rows
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import export_sample_row, variant_stages  # noqa: E402


def main():
    cfg, each = variant_stages(__doc__)
    C, h = cfg["channels"], cfg["image_size"] // cfg["subscale"]
    stages = []
    for st, m, d in each:
        for variant in ("unrolled", "loop"):
            export_sample_row(m, os.path.join(d, f"sample_row.{variant}.onnx"), variant, 2, C, h, m.d)
        stages.append({"name": st["name"], "width": m.d, "upperLayers": len(m.upper_convs)})
    json.dump({"model": cfg["name"], "channels": C, "rowWidth": h, "stages": stages}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
