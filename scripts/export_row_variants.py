#!/usr/bin/python3
"""Writes the variants of each stage's sample_row graph, for `npm run bench:row-graph`:
<out>/<stage>/sample_row.<variant>.onnx for `unrolled` (what export.py ships), `loop` (an ONNX
Loop over the decoder_pixel step) and the formulations of spn/row_variants.py. Before export, each
formulation is checked in PyTorch against SPN.sample_row on random rows: the same pixels, NLL
within 1e-4 nats.

  /usr/bin/python3 scripts/export_row_variants.py --config mu-fmnist --out /tmp/rows
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import export_sample_row, variant_stages  # noqa: E402
from spn.row_variants import VARIANTS, traced  # noqa: E402


def random_row(m, C, h, B=4):
    g = torch.Generator().manual_seed(1)
    return (torch.randint(0, m.K, (B, C, h), generator=g), torch.randn(B, m.d, h, generator=g), torch.full((B,), 3),
            torch.rand(B, len(m.upper_convs), m.d, h, generator=g), torch.rand(B, h, C, generator=g), torch.full((B,), 0.8))


def main():
    cfg, each = variant_stages(__doc__)
    C, h = cfg["channels"], cfg["image_size"] // cfg["subscale"]
    stages = []
    for st, m, d in each:
        args = random_row(m, C, h)
        with torch.no_grad():
            _, want, want_nll = m.sample_row(*args)
        for variant in ("unrolled", "loop"):
            export_sample_row(m, os.path.join(d, f"sample_row.{variant}.onnx"), variant, 2, C, h, m.d)
        for variant in VARIANTS:
            with traced(m, variant):
                with torch.no_grad():
                    _, got, nll = m.sample_row(*args)
                assert torch.equal(got, want) and (nll - want_nll).abs().max().item() < 1e-4, \
                    f"{st['name']}: {variant} does not compute what SPN.sample_row does"
                export_sample_row(m, os.path.join(d, f"sample_row.{variant}.onnx"), "unrolled", 2, C, h, m.d)
        stages.append({"name": st["name"], "width": m.d, "classes": m.K, "upperLayers": len(m.upper_convs)})
    json.dump({"model": cfg["name"], "channels": C, "rowWidth": h, "variants": ["loop", *VARIANTS], "stages": stages}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
