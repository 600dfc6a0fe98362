#!/usr/bin/python3
"""Exact test-set NLL of a trained model: every slice of every stage, bits per dimension over the
H*W*C real pixels, in total and per stage with the same denominator. Writes runs/<model>/eval.json.

  /usr/bin/python3 scripts/evaluate.py --config mu-fmnist
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spn.data import datasets  # noqa: E402
from spn.model import spn_from_config  # noqa: E402
from spn.stages import check_checkpoint_orders, load_config, stage_model_config  # noqa: E402
from train import stage_nll_bits  # noqa: E402


def load_checkpoint(cfg, stage, runs, device="cpu"):
    """A stage's best.pt: its model, and the training step it was saved at (None for a checkpoint
    not written by train.py, as experiment-width.sh's untrained ones)."""
    path = os.path.join(runs, cfg["name"], stage["name"], "best.pt")
    ck = torch.load(path, map_location=device)
    check_checkpoint_orders(cfg, ck.get("config"), path)
    m = spn_from_config(stage_model_config(cfg, stage)).to(device)
    m.load_state_dict(ck["model"])
    return m.eval(), ck.get("state", {}).get("step")


def load_stage(cfg, stage, runs, device="cpu"):
    return load_checkpoint(cfg, stage, runs, device)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N test images (0: all)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.limit < 0 or args.threads < 0:
        ap.error("--limit and --threads must be 0 or more")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    _, _, test = datasets(cfg["channels"], limit=cfg["train"].get("limit"))
    if args.limit:
        test = test[: args.limit]
    dims = test.shape[0] * cfg["image_size"] ** 2 * cfg["channels"]
    out = {"images": test.shape[0], "denominator": "H*W*C per image", "stages": {}}
    total = 0.0
    t0 = time.time()
    for st in cfg["stages"]:
        model, step = load_checkpoint(cfg, st, args.runs, args.device)
        bits, per_slice = stage_nll_bits(model, cfg, st, test, device=args.device)
        total += bits
        out["stages"][st["name"]] = {
            "checkpoint_step": step,
            "bits_per_dim": bits / dims,
            "per_slice_bits_per_dim": [b / dims for b in per_slice.tolist()]}
        print(f"{st['name']:>6}: {bits / dims:.4f} bits/dim", flush=True)
    out["bits_per_dim"] = total / dims
    out["seconds"] = round(time.time() - t0, 1)
    print(f" total: {total / dims:.4f} bits/dim over {test.shape[0]} test images")
    # the whole test set's figure goes in eval.json, which export.py puts in the manifest; a --limit
    # run beside it, so that it does not replace that figure
    name = f"eval-first{args.limit}.json" if args.limit else "eval.json"
    with open(os.path.join(args.runs, cfg["name"], name), "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {os.path.join(args.runs, cfg['name'], name)}")


if __name__ == "__main__":
    main()
