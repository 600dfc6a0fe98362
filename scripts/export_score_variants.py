#!/usr/bin/python3
"""Writes each stage's likelihood graphs twice, for `npm run bench:score-graph`:
<out>/<stage>/score.plain.onnx — the scoring function traced as training runs it (SPN.slice_nll:
pad + slice shifts, the head on [B, h, w, C, d]) and saved as the exporter writes it — and
<out>/<stage>/score.shipped.onnx, what export.py ships (SPN.graph_layout, then
spn/graph_pass.py); the same for score_context where the stage's first context is constant.
Prints the stages as JSON.

  /usr/bin/python3 scripts/export_score_variants.py --config mu-fmnist --out /tmp/score
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import load_stage  # noqa: E402
from export import Score, ScoreContext, first_context_constant, onnx_export  # noqa: E402
from spn.stages import load_config  # noqa: E402


class PlainScore(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, slices, target, aux=None):
        return self.m.slice_nll(slices.long(), target.long(), None if aux is None else aux.long())


class PlainScoreContext(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, y, context):
        return self.m.nll_given_context(y.long(), context)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = load_config(args.config)
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    SS, h = S * S, N // S
    B = 2
    stages = []
    for st in cfg["stages"]:
        m = load_stage(cfg, st, args.runs)
        out = os.path.join(args.out, st["name"])
        os.makedirs(out, exist_ok=True)
        aux = torch.zeros(B, SS, C, h, h, dtype=torch.int32) if st["aux_bits"] else None
        sargs = (torch.zeros(B, SS, C, h, h, dtype=torch.int32), torch.full((B,), st["first_slice"], dtype=torch.int32))
        sargs += (aux,) if aux is not None else ()
        names = ["slices", "target"] + (["aux"] if aux is not None else [])
        ctx = first_context_constant(cfg, st, m)
        for variant, score, score_context, fold in (("plain", PlainScore, PlainScoreContext, False),
                                                    ("shipped", Score, ScoreContext, True)):
            onnx_export(score(m), sargs, os.path.join(out, f"score.{variant}.onnx"), names, ["nll"], fold=fold)
            if ctx:
                onnx_export(score_context(m), (torch.zeros(B, C, h, h, dtype=torch.int32), torch.zeros(B, m.d, h, h)),
                            os.path.join(out, f"score_context.{variant}.onnx"), ["slice", "context"], ["nll"], fold=fold)
        stages.append({"name": st["name"], "width": m.d, "classes": m.K, "firstSlice": st["first_slice"],
                       "lastSlice": m.last_slice, "auxBits": st["aux_bits"], "scoreContext": ctx})
    json.dump({"model": cfg["name"], "channels": C, "subscale": S, "size": h, "stages": stages}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
