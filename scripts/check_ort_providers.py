#!/usr/bin/python3
"""Runs every exported graph of every model under a models folder on onnxruntime's CPU provider and,
where the onnxruntime in use has it, on the CUDA provider, and compares them:

  - likelihood parity: the score graph, on the CUDA (and the CPU) provider, reproduces the per-slice
    NLL that PyTorch wrote into the model's fixtures.json, for every fixture image and stage;
  - every graph, on the same random but valid inputs (batch 1 and 32), gives the same outputs on
    both providers: float outputs within a tolerance, sampled pixels counted where they differ
    (`--against` names the other provider; CUDA by default);
  - the median time of one run of each graph on each provider, and their ratio.

Needs the Python onnxruntime (onnxruntime-gpu for the CUDA side), numpy and torch (for slicing the
fixture images). Not part of CI: it is the GPU check run by scripts/check-cuda.sh.

  python3 scripts/check_ort_providers.py [models-dir] [--json out.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

# onnxruntime (the Python package, not in Debian: the device machine brings it) and torch are
# imported in main(), after the arguments, so that --help works without them
ort = None
torch = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spn.stages import stage_planes  # noqa: E402


def session(path, provider):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=[provider])


def int_range(name, stage, h):
    """Valid values of an int32 input, by its name."""
    if name == "target":
        return stage["firstSlice"], stage["lastSlice"]
    if name in ("row", "col"):
        return 0, h
    if name == "aux":
        return 0, 1 << stage["aux"]["bits"]
    return 0, stage["classes"]   # slices, slice, prev_row, prev_values: pixel values of the stage


def random_feed(graph, stage, h, batch, rng):
    feed = {}
    for inp in graph["inputs"]:
        shape = [batch if isinstance(d, str) else d for d in inp["shape"]]
        if inp["dtype"] == "int32":
            lo, hi = int_range(inp["name"], stage, h)
            feed[inp["name"]] = rng.integers(lo, hi, size=shape, dtype=np.int32)
        elif inp["name"] == "uniform":
            feed[inp["name"]] = rng.random(shape, dtype=np.float32)
        elif inp["name"] == "temperature":
            feed[inp["name"]] = np.full(shape, 0.9, dtype=np.float32)
        else:   # contexts and caches: activations of about unit scale
            feed[inp["name"]] = rng.standard_normal(shape, dtype=np.float32)
    return feed


def median_ms(sess, feed, reps):
    sess.run(None, feed)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def fixture_nll(model_dir, manifest, sessions, provider):
    """Largest |NLL(graph) - NLL(PyTorch fixture)| over fixture images, stages and slices, in nats."""
    fx = json.load(open(os.path.join(model_dir, "fixtures.json")))
    cfg = manifest["training"]["config"]
    img = manifest["image"]
    n, c = img["height"], img["channels"]
    worst, count = 0.0, 0
    for case in fx["nll"]:
        x = torch.tensor(case["image"], dtype=torch.uint8).view(1, n, n, c).permute(0, 3, 1, 2)
        for st_cfg, st_man, st_fx in zip(cfg["stages"], manifest["stages"], case["stages"]):
            slices, aux = stage_planes(cfg, st_cfg, x)
            sess = sessions[(st_man["name"], "score", provider)]
            for sl in st_fx["slices"]:
                feed = {"slices": slices.to(torch.int32).numpy(), "target": np.array([sl["slice"]], dtype=np.int32)}
                if aux is not None:
                    feed["aux"] = aux.to(torch.int32).numpy()
                nats = float(sess.run(["nll"], feed)[0].astype(np.float64).sum())
                worst = max(worst, abs(nats - sl["nats"]))
                count += 1
    return worst, count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="?", default="models")
    ap.add_argument("--json", default="")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--against", default="CUDAExecutionProvider",
                    help="the provider compared with the CPU one (another, e.g. DnnlExecutionProvider, tries the check out)")
    args = ap.parse_args()
    global ort, torch
    import onnxruntime as ort
    import torch

    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"] + ([args.against] if args.against in available else [])
    print(f"onnxruntime {ort.__version__}, device {ort.get_device()}, providers available: {available}")
    if len(providers) == 1:
        print(f"no {args.against} in this onnxruntime: only the CPU side runs")
    report = {"onnxruntime": ort.__version__, "providers": providers, "models": {}}
    rng = np.random.default_rng(0)
    failures = 0
    for name in sorted(os.listdir(args.models)):
        model_dir = os.path.join(args.models, name)
        man_path = os.path.join(model_dir, "manifest.json")
        if not os.path.exists(man_path):
            continue
        manifest = json.load(open(man_path))
        h = manifest["image"]["height"] // manifest["subscaleFactor"]
        sessions, rows = {}, []
        for st in manifest["stages"]:
            for gname, g in st["graphs"].items():
                for p in providers:
                    sessions[(st["name"], gname, p)] = session(os.path.join(model_dir, g["file"]), p)
        entry = {"fixture_nll": {}, "graphs": rows}
        for p in providers:
            worst, count = fixture_nll(model_dir, manifest, sessions, p)
            entry["fixture_nll"][p] = {"max_abs_nats": worst, "slices": count}
            ok = worst < 1e-3
            failures += not ok
            print(f"{name}: score graph on {p} vs PyTorch fixtures: {count} slices, max |diff| {worst:.2e} nats"
                  f" {'ok' if ok else 'FAIL'}")
        for st in manifest["stages"]:
            for gname, g in st["graphs"].items():
                for batch in (1, 32):
                    feed = random_feed(g, st, h, batch, rng)
                    row = {"stage": st["name"], "graph": gname, "batch": batch}
                    try:
                        outs = {p: sessions[(st["name"], gname, p)].run(None, feed) for p in providers}
                    except Exception as err:   # a provider that cannot run a graph is a finding, not the end
                        row["error"] = str(err).splitlines()[0][:300]
                        failures += 1
                        rows.append(row)
                        print(f"  FAIL {name}/{st['name']}/{gname} b{batch}: {row['error']}")
                        continue
                    for p in providers:
                        row[f"{p}_ms"] = median_ms(sessions[(st["name"], gname, p)], feed, args.reps)
                    if len(providers) == 2:
                        names = [o["name"] for o in g["outputs"]]
                        for oname, a, b in zip(names, outs[providers[0]], outs[providers[1]]):
                            if a.dtype.kind == "f":
                                d = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
                                scale = float(np.max(np.abs(a))) if a.size else 0.0
                                row[f"{oname}_max_abs_diff"] = d
                                ok = d <= 1e-3 * max(1.0, scale)
                            else:
                                diff = int(np.sum(a != b))
                                row[f"{oname}_differ"] = f"{diff}/{a.size}"
                                ok = diff <= max(1, a.size // 1000)   # a draw at a bin edge may round apart
                            failures += not ok
                            if not ok:
                                print(f"  FAIL {name}/{st['name']}/{gname} b{batch} {oname}: {row}")
                        row["cpu_over_other"] = row["CPUExecutionProvider_ms"] / row[f"{providers[1]}_ms"]
                    rows.append(row)
                    print("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        report["models"][name] = entry
    report["failures"] = failures
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    print(f"{failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
