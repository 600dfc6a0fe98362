#!/usr/bin/python3
"""Train one stage of an SPN model on Fashion-MNIST, with checkpoints, resume and early stopping.

Each step draws one random target slice per image (teacher forcing on the true earlier slices).
Validation scores every slice of held-out images exactly; the best checkpoint is kept.

  /usr/bin/python3 scripts/train.py --config mu-fmnist --stage depth --minutes 50
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spn.data import datasets  # noqa: E402
from spn.model import LN2, parameter_count, spn_from_config  # noqa: E402
from spn.stages import check_checkpoint_orders, load_config, stage_model_config, stage_planes  # noqa: E402


def stage_nll_bits(model, cfg, stage, images, batch=250, device="cpu"):
    """Exact NLL of a stage over images, in bits, summed over every slice it generates."""
    total = 0.0
    per_slice = torch.zeros(cfg["subscale"] ** 2, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            slices, aux = stage_planes(cfg, stage, images[i:i + batch].to(device))
            B = slices.shape[0]
            for t in range(stage["first_slice"], stage["last_slice"]):
                target = torch.full((B,), t, dtype=torch.int64, device=device)
                nll = model.slice_nll(slices, target, aux).double().sum().item() / LN2
                per_slice[t] += nll
                total += nll
    return total, per_slice


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="config name under scripts/configs or a .json path")
    ap.add_argument("--stage", required=True, help="stage name in the config")
    ap.add_argument("--runs", default="runs", help="folder for checkpoints and logs")
    ap.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    ap.add_argument("--steps", type=int, default=0, help="step budget (0: time budget only)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--patience", type=int, default=6, help="evaluations without improvement before stopping")
    args = ap.parse_args()
    if not args.minutes > 0:
        ap.error("--minutes must be more than 0 (with --steps, the run ends at whichever comes first)")
    if args.steps < 0 or args.threads < 0:
        ap.error("--steps and --threads must be 0 or more")
    if args.patience < 1:
        ap.error("--patience must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = load_config(args.config)
    stage = next((s for s in cfg["stages"] if s["name"] == args.stage), None)
    if stage is None:
        ap.error(f"{cfg['name']} has no stage {args.stage!r}; its stages: {', '.join(s['name'] for s in cfg['stages'])}")
    tc = cfg["train"]
    out = os.path.join(args.runs, cfg["name"], stage["name"])
    os.makedirs(out, exist_ok=True)
    ckpt_path, best_path = os.path.join(out, "last.pt"), os.path.join(out, "best.pt")

    train, val, _ = datasets(cfg["channels"], limit=tc.get("limit"))
    val = val[: tc["eval_images"]]
    torch.manual_seed(tc.get("seed", 0))   # the same initial weights every run of a config
    model = spn_from_config(stage_model_config(cfg, stage)).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=tc["lr"])
    state = {"step": 0, "seconds": 0.0, "best_val": math.inf, "evals": [], "bad_evals": 0}
    gen = torch.Generator().manual_seed(1234)   # the batches and target slices drawn
    if os.path.exists(ckpt_path):
        # loaded on the CPU: the generator's state must stay a CPU tensor (on a GPU, set_state
        # refuses it), and the weights and the optimizer's state go to the model's device on load
        ck = torch.load(ckpt_path, map_location="cpu")
        check_checkpoint_orders(cfg, ck.get("config"), ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        if "gen" in ck:
            gen.set_state(ck["gen"])   # (a resumed run draws what an uninterrupted one would)
        else:
            gen.manual_seed(1234 + state["step"])
        print(f"resumed from step {state['step']} ({state['seconds']:.0f} s)", flush=True)
    budget_s = args.minutes * 60
    dims = cfg["image_size"] ** 2 * cfg["channels"]
    print(f"{cfg['name']}/{stage['name']}: {parameter_count(model)} parameters, "
          f"{train.shape[0]} train / {val.shape[0]} validation images", flush=True)

    def lr_at(seconds, step):
        # cosine decay over the budget: the schedule ends when the run does, at --minutes or at
        # --steps, whichever comes first
        frac = min(max(seconds / budget_s, step / args.steps if args.steps else 0.0), 1.0)
        return tc["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))

    def save(path):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                    "config": cfg, "stage": stage["name"], "gen": gen.get_state()}, path)

    run_loss, run_n = 0.0, 0
    t_last = time.time()
    if state["bad_evals"] >= args.patience:   # a run that stopped early stays stopped when re-run
        print(f"stopped early at step {state['step']}: {state['bad_evals']} evaluations without improvement "
              f"(--patience {args.patience})", flush=True)
    while state["seconds"] < budget_s and (not args.steps or state["step"] < args.steps) and state["bad_evals"] < args.patience:
        model.train()
        idx = torch.randint(0, train.shape[0], (tc["batch"],), generator=gen)
        slices, aux = stage_planes(cfg, stage, train[idx].to(args.device))
        target = torch.randint(stage["first_slice"], stage["last_slice"], (tc["batch"],), generator=gen).to(args.device)
        for g in opt.param_groups:
            g["lr"] = lr_at(state["seconds"], state["step"])
        loss = model.slice_nll(slices, target, aux).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        run_loss += loss.item()
        run_n += 1
        now = time.time()
        state["seconds"] += now - t_last
        t_last = now
        # evaluated (and last.pt saved, to resume from) every eval_every steps and at the end of
        # the budget or of --steps, so that a short run also has a validated best.pt and a last.pt
        last = state["seconds"] >= budget_s or (args.steps and state["step"] >= args.steps)
        if state["step"] % tc["eval_every"] == 0 or last:
            bits, _ = stage_nll_bits(model, cfg, stage, val.to(args.device), device=args.device)
            val_bpd = bits / (val.shape[0] * dims)
            improved = val_bpd < state["best_val"]
            state["evals"].append({"step": state["step"], "seconds": round(state["seconds"], 1),
                                   "train_bits_per_subpixel": run_loss / run_n / LN2,
                                   "val_bits_per_dim": val_bpd})
            print(json.dumps(state["evals"][-1]) + (" *" if improved else ""), flush=True)
            run_loss, run_n = 0.0, 0
            if improved:
                state["best_val"], state["bad_evals"] = val_bpd, 0
                save(best_path)
            else:
                state["bad_evals"] += 1
            save(ckpt_path)
            t_last = time.time()  # evaluation time is not training time
            if state["bad_evals"] >= args.patience:
                print("early stop: validation stopped improving", flush=True)
                break
    if not os.path.exists(best_path):
        save(best_path)
    with open(os.path.join(out, "train.json"), "w") as f:
        best = state["best_val"] if math.isfinite(state["best_val"]) else None   # (no evaluation yet)
        json.dump({"steps": state["step"], "train_seconds": round(state["seconds"], 1),
                   "best_val_bits_per_dim": best, "evals": state["evals"],
                   "parameters": parameter_count(model), "batch": tc["batch"],
                   "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {args.device}",
                   "torch": torch.__version__}, f, indent=1, allow_nan=False)
    print(f"done: {state['step']} steps, {state['seconds']:.0f} s, best validation {state['best_val']:.4f} bits/dim")


if __name__ == "__main__":
    main()
