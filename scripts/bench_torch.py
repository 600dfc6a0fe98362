#!/usr/bin/python3
"""The PyTorch side of `npm run bench`: the project's reference sampler and exact scoring on the
trained checkpoints, timed on this machine, plus a matrix-product peak and FLOP counts. Prints
one JSON object on stdout (progress goes to stderr).

What it times, per model (a model is one or more stages, runs/<name>/<stage>/best.pt):
  sampling    spn.sampler.sample_pipeline (cached, batched, torch.no_grad), temperature 1, at
              each batch size; latency of one call is the latency of every image in it
  likelihood  exact NLL of every slice of every stage (SPN.slice_nll), batch 1 and batch B, on
              the first Fashion-MNIST test images
  flops       multiply-adds of every convolution and matrix product (aten convolution, addmm, mm,
              bmm, baddbmm, seen by a dispatch mode, so the functional F.conv2d / F.linear of the
              cached steps count too) in one run of each exported graph's PyTorch function at
              batch 1 with the graph's input shapes, times 2; embeddings, softmax and element-wise
              ops are not counted. sample_row is counted as decoder_row + w x decoder_pixel (what
              it runs)
  matmul      an N x N float32 torch.matmul, the machine's matrix-product peak at these threads
              (best of 5 trials of 0.2 s)

  /usr/bin/python3 scripts/bench_torch.py --models tiny-c1 --threads 2 --images-out /tmp/x.json
"""
import argparse
import json
import os
import sys
import time


def _pin_threads(argv):
    """torch.set_num_threads does not reach OpenBLAS, which runs its own pthreads (one per core)
    for every matrix product: without this, PyTorch "at 1 thread" multiplies on both cores of
    this machine. The pools read these variables when torch loads, so they are set before."""
    n = None
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    n = n or "2"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n


_pin_threads(sys.argv[1:])
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import load_stage  # noqa: E402
from spn.data import colourize, load_split  # noqa: E402
from spn.model import LN2, parameter_count  # noqa: E402
from spn.sampler import sample_pipeline  # noqa: E402
from spn.stages import load_config, stage_planes  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def test_images(cfg, n):
    """The first n test images, as spn.data.datasets() makes them (tinted for C = 3), without
    loading the training split."""
    test = load_split("test")
    if cfg["channels"] == 3:
        test = colourize(test, 1)  # datasets(seed=0) tints the test split with seed + 1
    return torch.from_numpy(test[:n].copy())


# ---- FLOPs ---------------------------------------------------------------------------------
class MacCounter(TorchDispatchMode):
    """Multiply-adds of every convolution and matrix product run while it is active. It counts at
    the aten level, so modules and functional calls (F.conv2d / F.linear on a module's weight, as
    the cached steps do) count alike; each op is seen once (calls made inside an op are not)."""

    def __init__(self):
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name == "convolution":
            w = args[1]                                     # [out, in / groups, kh, kw]
            self.macs += out.numel() * w[0].numel()
        elif name in ("addmm", "mm"):
            a = args[1] if name == "addmm" else args[0]     # [M, K] x [K, N]
            self.macs += out.numel() * a.shape[-1]
        elif name in ("bmm", "baddbmm"):
            a = args[1] if name == "baddbmm" else args[0]   # [B, M, K] x [B, K, N]
            self.macs += out.numel() * a.shape[-1]
        return out


def graph_flops(cfg, st, m):
    """FLOPs of one run, at batch 1, of each graph that export.py writes for this stage, with the
    graph's input shapes (export_stage): caches included."""
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    SS, h = S * S, N // S
    w, d = h, m.d
    slices = torch.zeros(1, SS, C, h, w, dtype=torch.int64)
    aux = torch.zeros(1, SS, C, h, w, dtype=torch.int64) if st["aux_bits"] else None
    t = torch.tensor([st["first_slice"]])
    one = torch.ones(1, dtype=torch.int64)
    out = {}
    with torch.no_grad():
        for name, fn in [
            ("conditioning", lambda: m.conditioning(slices, t, aux)),
            # prev_row [1, C, w], context_row [1, d, w], row [1], vcaches [1, L, d, w]
            ("decoder_row", lambda: m.upper_step(torch.zeros(1, C, w, dtype=torch.int64), torch.zeros(1, d, w), one,
                                                 m.empty_upper_caches(1, w))),
            # prev_values [1, C], col [1], caches [1, L, k - 1, d + 1], upper [1, d, w], uniform [1, C], temperature [1]
            ("decoder_pixel", lambda: m.pixel_step(torch.zeros(1, C, dtype=torch.int64), one, m.empty_caches(1),
                                                   torch.zeros(1, d, w), torch.rand(1, C), torch.ones(1))),
            ("score", lambda: m.slice_nll(slices, t, aux)),
            ("score_context", lambda: m.nll_given_context(torch.zeros(1, C, h, w, dtype=torch.int64), torch.zeros(1, d, h, w))),
        ]:
            with MacCounter() as c:
                fn()
            out[name] = 2 * c.macs
    # sample_row = decoder_row + w decoder_pixel steps (unrolled)
    out["sample_row"] = out["decoder_row"] + w * out["decoder_pixel"]
    check_flops(m, C, w, out)
    return out


def check_flops(m, C, w, g):
    """The cached steps' FLOPs from the layer sizes (as spn.model defines them today): a step
    that the counter misses, or a model change, shows up here as a warning."""
    d, k, K = m.d, m.row_kernel, m.K
    row = 2 * len(m.upper_convs) * w * d * d * 2 * 3                      # (2, 3) convs on one row
    # the taps carry an extra column and the mix its bias as an extra row (SPN.row_taps)
    pixel = 2 * (len(m.row_convs) * (d * (d + 1) * k + (d + 1) * d) + C * (d * d + d * K))
    if (g["decoder_row"], g["decoder_pixel"]) != (row, pixel):
        log(f"WARNING: FLOP count of the cached steps differs from the layer sizes: decoder_row {g['decoder_row']} "
            f"(layer sizes: {row}), decoder_pixel {g['decoder_pixel']} (layer sizes: {pixel})")


def model_flops(cfg, models):
    """Per graph, per sampled image and per scored image (runs as the sampler and scorer make
    them: per slice one conditioning and one score run, per row one decoder_row run, per pixel
    one decoder_pixel run, all channels; sample_row = one decoder_row + w decoder_pixel)."""
    h = w = cfg["image_size"] // cfg["subscale"]
    per_graph, score, skipped_sample, skipped_score = {}, 0, 0, 0
    parts = {"conditioning": 0, "decoder_row": 0, "decoder_pixel": 0}
    for st in cfg["stages"]:
        g = graph_flops(cfg, st, models[st["name"]])
        per_graph[st["name"]] = g
        n = st["last_slice"] - st["first_slice"]
        parts["conditioning"] += n * g["conditioning"]
        parts["decoder_row"] += n * h * g["decoder_row"]
        parts["decoder_pixel"] += n * h * w * g["decoder_pixel"]
        score += n * g["score"]
        if not st["aux_bits"] and st["first_slice"] == 0:
            # the runtime computes this stage's first context once (manifest firstContextConstant)
            skipped_sample += g["conditioning"]
            skipped_score += g["score"] - g["score_context"]
    return {"per_graph": per_graph, "sample_image": sum(parts.values()), "sample_parts": parts, "likelihood_image": score,
            "runtime_sample_image": sum(parts.values()) - skipped_sample, "runtime_likelihood_image": score - skipped_score}


# ---- timings -------------------------------------------------------------------------------
def matmul_peak(n, trials=5, min_seconds=0.2):
    """Best of a few timed trials: other work on the machine only ever makes a trial slower."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        torch.matmul(a, b)
    best = 0.0
    for _ in range(trials):
        reps, t0 = 0, time.perf_counter()
        while True:
            torch.matmul(a, b)
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= min_seconds and reps >= 2:
                break
        best = max(best, 2 * n ** 3 * reps / dt / 1e9)
    c0, t0 = time.process_time(), time.perf_counter()
    torch.matmul(a, b)
    torch.matmul(a, b)
    cores = (time.process_time() - c0) / (time.perf_counter() - t0)
    return {"n": n, "trials": trials, "gflops": best, "cores": cores}


def uniforms_for(cfg, batch, gen):
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    return {st["name"]: torch.rand(batch, S * S, N // S, N // S, C, generator=gen) for st in cfg["stages"]}


def bench_sampling(cfg, models, batch, images, gen):
    calls = max(1, -(-images // batch))
    lat, cpu = [], 0.0
    for _ in range(calls):
        u = uniforms_for(cfg, batch, gen)
        t0, c0 = time.perf_counter(), time.process_time()
        sample_pipeline(cfg, models, u, torch.ones(batch))
        lat.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
    return {"batch": batch, "images": calls * batch, "calls": calls, "seconds": sum(lat), "cpu_seconds": cpu, "latencies": lat}


def score(cfg, models, images):
    """Exact NLL in nats of each image [B], every slice of every stage."""
    nats = torch.zeros(images.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for st in cfg["stages"]:
            slices, aux = stage_planes(cfg, st, images)
            B = slices.shape[0]
            for t in range(st["first_slice"], st["last_slice"]):
                nll = models[st["name"]].slice_nll(slices, torch.full((B,), t, dtype=torch.int64), aux)
                nats += nll.double().sum(dim=(1, 2, 3))
    return nats


def bench_likelihood(cfg, models, batch, images):
    n = images.shape[0]
    dims = cfg["image_size"] ** 2 * cfg["channels"]
    lat, bpd, cpu = [], [], 0.0
    for i in range(0, n, batch):
        t0, c0 = time.perf_counter(), time.process_time()
        nats = score(cfg, models, images[i:i + batch])
        lat.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        bpd += (nats / LN2 / dims).tolist()
    return {"batch": batch, "images": n, "calls": len(lat), "seconds": sum(lat), "cpu_seconds": cpu, "latencies": lat,
            "bits_per_dim": bpd}


def warm_up(cfg, models, batches, images):
    """The first runs at a new batch size are slow (allocations, kernel choice): one row step,
    one pixel step and one scoring pass at every batch size before anything is timed."""
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    h = N // S
    with torch.no_grad():
        for B in sorted(set(batches)):
            for st in cfg["stages"]:
                m = models[st["name"]]
                slices = torch.zeros(B, S * S, C, h, h, dtype=torch.int64)
                aux = torch.zeros_like(slices) if st["aux_bits"] else None
                ctx = m.conditioning(slices, torch.zeros(B, dtype=torch.int64), aux)
                up, _ = m.upper_step(torch.zeros(B, C, h, dtype=torch.int64), ctx[:, :, 0], torch.zeros(B, dtype=torch.int64),
                                     m.empty_upper_caches(B, h))
                m.pixel_step(torch.zeros(B, C, dtype=torch.int64), torch.zeros(B, dtype=torch.int64), m.empty_caches(B),
                             up, torch.rand(B, C), torch.ones(B))
            score(cfg, models, images[:B].repeat(-(-B // images.shape[0]), 1, 1, 1)[:B])


def ints(s):
    return [int(x) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="comma-separated config names (scripts/configs/<name>.json)")
    ap.add_argument("--runs", default="runs", help="folder with <model>/<stage>/best.pt")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--sample-batches", default="1,8,32")
    ap.add_argument("--sample-images", default="12,48,128", help="images per batch setting (rounded up to whole batches)")
    ap.add_argument("--likelihood-batches", default="1,64")
    ap.add_argument("--likelihood-images", default="32,256", help="test images per batch setting")
    ap.add_argument("--matmul", type=int, default=1024, help="N of the N x N matmul peak (0: skip)")
    ap.add_argument("--images-out", default="", help="write the test images (HWC, uint8 as lists) to this JSON file")
    ap.add_argument("--matmul-onnx", default="", help="write an N x N MatMul ONNX graph here, for the runtime's peak")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sb, si, lb, li = ints(args.sample_batches), ints(args.sample_images), ints(args.likelihood_batches), ints(args.likelihood_images)
    if len(sb) != len(si) or len(lb) != len(li):
        ap.error("each batch list needs an image count per entry")

    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": {}}
    if args.matmul:
        out["matmul"] = matmul_peak(args.matmul)
        log(f"torch matmul {args.matmul}: {out['matmul']['gflops']:.1f} GFLOP/s at {args.threads} threads")
    if args.matmul_onnx:
        write_matmul_onnx(args.matmul_onnx, args.matmul or 1024)

    dumped = {}
    for name in args.models.split(","):
        cfg = load_config(name)
        models = {st["name"]: load_stage(cfg, st, args.runs) for st in cfg["stages"]}
        images = test_images(cfg, max(li))
        dumped[name] = {"height": cfg["image_size"], "width": cfg["image_size"], "channels": cfg["channels"],
                        "images": images.permute(0, 2, 3, 1).reshape(images.shape[0], -1).tolist()}
        res = {"parameters": sum(parameter_count(m) for m in models.values()),
               "flops": model_flops(cfg, models), "sampling": [], "likelihood": []}
        warm_up(cfg, models, sb + lb, images)
        gen = torch.Generator().manual_seed(args.seed)
        for B, n in zip(sb, si):
            r = bench_sampling(cfg, models, B, n, gen)
            log(f"torch {name} sampling batch {B}: {r['images'] / r['seconds']:.2f} images/s")
            res["sampling"].append(r)
        for B, n in zip(lb, li):
            r = bench_likelihood(cfg, models, B, images[:n])
            log(f"torch {name} likelihood batch {B}: {r['images'] / r['seconds']:.1f} images/s")
            res["likelihood"].append(r)
        out["models"][name] = res

    if args.images_out:
        with open(args.images_out, "w") as f:
            json.dump(dumped, f)
    json.dump(out, sys.stdout)
    print()


def write_matmul_onnx(path, n):
    """Y = A @ B, both inputs N x N float32: the same product timed by the ONNX runtime (MLAS)."""
    import onnx
    from onnx import TensorProto, helper
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "matmul", [a, b], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


if __name__ == "__main__":
    main()
