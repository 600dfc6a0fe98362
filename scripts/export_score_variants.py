#!/usr/bin/python3
"""Writes each stage's likelihood graphs twice, for `npm run bench:score-graph`:
<out>/<stage>/score.plain.onnx — the scoring function traced as training runs it (SPN.slice_nll:
pad + slice shifts, the head on [B, h, w, C, d]) and saved as the exporter writes it — and
<out>/<stage>/score.shipped.onnx, what export.py ships (SPN.graph_layout, then
spn/graph_pass.py); the same for score_context where the stage's first context is constant.
Prints the stages as JSON.

  /usr/bin/python3 scripts/export_score_variants.py --config mu-fmnist --out /tmp/score
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import Score, ScoreContext, first_context_constant, onnx_export, score_inputs, variant_stages  # noqa: E402


def main():
    cfg, each = variant_stages(__doc__)
    stages = []
    for st, m, out in each:
        sargs, names, ctx_args, ctx_names = score_inputs(cfg, st, m, 2)
        ctx = first_context_constant(cfg, st, m)
        for variant, layout in (("plain", False), ("shipped", True)):
            onnx_export(Score(m, layout), sargs, os.path.join(out, f"score.{variant}.onnx"), names, ["nll"], fold=layout)
            if ctx:
                onnx_export(ScoreContext(m, layout), ctx_args, os.path.join(out, f"score_context.{variant}.onnx"),
                            ctx_names, ["nll"], fold=layout)
        stages.append({"name": st["name"], "width": m.d, "classes": m.K, "firstSlice": st["first_slice"],
                       "lastSlice": m.last_slice, "auxBits": st["aux_bits"], "scoreContext": ctx})
    json.dump({"model": cfg["name"], "channels": cfg["channels"], "subscale": cfg["subscale"],
               "size": cfg["image_size"] // cfg["subscale"], "stages": stages}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
