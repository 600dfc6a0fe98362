#!/usr/bin/python3
"""Export a trained model to ONNX, with its manifest, parity fixtures and a grid of samples.

For each stage it writes six graphs (opset 17, dynamic batch, int32 pixel values):
  conditioning.onnx   slices so far (+ aux plane), target slice -> context       once per slice
  decoder_row.onnx    the row above, the row's context, per-layer caches of the
                      vertical stack -> upper context of the row, new caches     once per row
  decoder_pixel.onnx  previous pixel, column, per-layer caches, upper context, uniforms,
                      temperature -> the pixel's sub-pixels, their NLL, new caches once per pixel
  sample_row.onnx     decoder_row + the row's w pixel steps, unrolled, with the
                      row's uniforms fed in (--row-graph loop: an ONNX Loop)     once per row
  score.onnx          all slices (+ aux), target slice -> NLL of every sub-pixel  once per slice
  score_context.onnx  a slice and its context -> NLL of every sub-pixel: scoring
                      without the conditioning network, for a first slice whose
                      context is a constant (no aux plane)                        once per image
The likelihood graphs are traced in a layout for onnxruntime's blocked convolutions
(SPN.graph_layout), and every graph goes through spn/graph_pass.py (zero padding folded into the
convolution after it); together 1.13-1.32x faster likelihood graphs than the plain trace, NLL
within 3e-6 nats (npm run bench:score-graph).
The manifest (models/<name>/manifest.json) is everything the runtime needs.

  /usr/bin/python3 scripts/export.py --config mu-fmnist
"""
import argparse
import hashlib
import inspect
import json
import math
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evaluate import load_checkpoint, load_stage  # noqa: E402
from spn.data import datasets  # noqa: E402
from spn.model import LN2, from_slices, parameter_count  # noqa: E402
from spn.graph_pass import fold_file as fold_pads_into_convs_file  # noqa: E402
from spn.row_loop import build_sample_row  # noqa: E402
from spn.sampler import bins, recorded_draws, sample_pipeline, sample_stage  # noqa: E402
from spn.stages import load_config, stage_planes, to_image_channels  # noqa: E402

SCHEMA_VERSION = 2
OPSET = 17
FIXTURE_TEMPERATURES = [1.0, 0.7]
# how far (in probability) a fixture uniform stays from the edge of the bin it picks: see sampling_fixtures
UNIFORM_MARGIN = 1e-4


class Conditioning(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, slices, target, aux=None):
        return self.m.conditioning(slices.long(), target.long(), None if aux is None else aux.long())


class DecoderRow(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, prev_row, context_row, row, vcaches):
        return self.m.upper_step(prev_row.long(), context_row, row.long(), vcaches)


class DecoderPixel(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, prev_values, col, caches, upper, uniform, temperature):
        s, nll, caches = self.m.pixel_step(prev_values.long(), col.long(), caches, upper, uniform, temperature)
        return s.to(torch.int32), nll, caches


class SampleRow(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, prev_row, context_row, row, vcaches, uniform, temperature):
        vcaches, values, nll = self.m.sample_row(prev_row.long(), context_row, row.long(), vcaches, uniform, temperature)
        return vcaches, values.to(torch.int32), nll


class GraphLayout:
    """Traces a scoring graph with SPN.graph_layout set as asked (its layout for onnxruntime); the
    model is left as it was, for the fixtures and the reference."""
    def __init__(self, m, on):
        self.m, self.on = m, on

    def __enter__(self):
        self.m.graph_layout = self.on

    def __exit__(self, *exc):
        self.m.graph_layout = False


class Score(nn.Module):
    """graph_layout=False traces the function as training runs it (export_score_variants.py)."""
    def __init__(self, m, graph_layout=True):
        super().__init__()
        self.m, self.graph_layout = m, graph_layout

    def forward(self, slices, target, aux=None):
        with GraphLayout(self.m, self.graph_layout):
            return self.m.slice_nll(slices.long(), target.long(), None if aux is None else aux.long())


class ScoreContext(nn.Module):
    def __init__(self, m, graph_layout=True):
        super().__init__()
        self.m, self.graph_layout = m, graph_layout

    def forward(self, y, context):
        with GraphLayout(self.m, self.graph_layout):
            return self.m.nll_given_context(y.long(), context)


def score_inputs(cfg, st, m, B):
    """Example inputs and their names for conditioning/score (slices, target, aux if the stage has
    one) and for score_context (slice, context)."""
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    SS, h = S * S, N // S
    args = (torch.zeros(B, SS, C, h, h, dtype=torch.int32), torch.full((B,), st["first_slice"], dtype=torch.int32))
    names = ["slices", "target"]
    if st["aux_bits"]:
        args += (torch.zeros(B, SS, C, h, h, dtype=torch.int32),)
        names.append("aux")
    return args, names, (torch.zeros(B, C, h, h, dtype=torch.int32), torch.zeros(B, m.d, h, h)), ["slice", "context"]


# which torch.onnx exporter writes the graphs (export.py --exporter): "torchscript", the one the
# shipped graphs come from (deprecated in PyTorch 2.9, still there in 2.13), or "dynamo", the
# torch.export-based one (PyTorch >= 2.6 with onnxscript), at opset 18, its lowest
EXPORTER = {"name": "torchscript"}
DYNAMO_OPSET = 18


def onnx_export(module, args, path, inputs, outputs, fold=True):
    module.eval()
    kwargs = dict(input_names=inputs, output_names=outputs, opset_version=OPSET, do_constant_folding=True,
                  dynamic_axes={n: {0: "batch"} for n, a in list(zip(inputs, args)) + [(o, None) for o in outputs]
                                if a is None or a.dim() > 0})
    dynamo_there = "dynamo" in inspect.signature(torch.onnx.export).parameters
    if EXPORTER["name"] == "dynamo":
        if not dynamo_there:
            raise SystemExit(f"--exporter dynamo needs PyTorch 2.6 or later with onnxscript; this is {torch.__version__}")
        # one file per graph, as the manifest's sha256 covers (the dynamo exporter would write the
        # weights beside it); opset 17 is below what it implements, and its down-conversion leaves
        # opset-18 attributes that onnxruntime then refuses
        batch = torch.export.Dim("batch")
        del kwargs["do_constant_folding"], kwargs["dynamic_axes"]
        kwargs.update(dynamo=True, opset_version=DYNAMO_OPSET, external_data=False, verbose=False,
                      dynamic_shapes=tuple({0: batch} if a.dim() > 0 else None for a in args))
    elif dynamo_there:
        kwargs["dynamo"] = False  # torch >= 2.9 defaults to the dynamo exporter
    torch.onnx.export(module, args, path, **kwargs)
    if fold:
        fold_pads_into_convs_file(path)


DTYPES = {1: "float32", 6: "int32", 7: "int64"}


def graph_info(path, rel):
    g = onnx.load(path).graph
    inits = {i.name for i in g.initializer}

    def io(v):
        t = v.type.tensor_type
        return {"name": v.name, "dtype": DTYPES[t.elem_type],
                "shape": [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]}
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    return {"file": rel, "sha256": sha, "bytes": os.path.getsize(path),
            "inputs": [io(v) for v in g.input if v.name not in inits], "outputs": [io(v) for v in g.output]}


def export_sample_row(m, path, variant, B, C, h, d):
    """sample_row.onnx: `unrolled` (SPN.sample_row traced, its w pixel steps unrolled) or `loop`
    (decoder_row + an ONNX Loop over the decoder_pixel step, spn.row_loop)."""
    Lv, L, k = len(m.upper_convs), len(m.row_convs), m.row_kernel
    if variant == "unrolled":
        onnx_export(SampleRow(m), (torch.zeros(B, C, h, dtype=torch.int32), torch.zeros(B, d, h),
                                   torch.zeros(B, dtype=torch.int32), torch.zeros(B, Lv, d, h), torch.rand(B, h, C), torch.ones(B)),
                    path, ["prev_row", "context_row", "row", "vcaches", "uniform", "temperature"],
                    ["vcaches_out", "row_values", "nll"])
        return
    row, body = path + ".row.onnx", path + ".body.onnx"
    onnx_export(DecoderRow(m), (torch.zeros(B, C, h, dtype=torch.int32), torch.zeros(B, d, h),
                                torch.zeros(B, dtype=torch.int32), torch.zeros(B, Lv, d, h)),
                row, ["prev_row", "context_row", "row", "vcaches"], ["upper", "vcaches_out"])
    build_sample_row(m, onnx_export, row, body, path, B, C, h, d, L, k)
    os.remove(row)
    os.remove(body)


def export_stage(cfg, st, m, out_dir, row_graph="unrolled"):
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    h, d = N // S, m.d
    B = 2
    cargs, cin, ctx_args, ctx_in = score_inputs(cfg, st, m, B)
    stage_dir = os.path.join(out_dir, st["name"])
    os.makedirs(stage_dir, exist_ok=True)
    graphs = {}

    def do(name, module, args, inputs, outputs):
        path = os.path.join(stage_dir, name + ".onnx")
        onnx_export(module, args, path, inputs, outputs)
        graphs[name] = graph_info(path, f"{st['name']}/{name}.onnx")

    do("conditioning", Conditioning(m), cargs, cin, ["context"])
    Lv = len(m.upper_convs)
    do("decoder_row", DecoderRow(m), (torch.zeros(B, C, h, dtype=torch.int32), torch.zeros(B, d, h),
                                      torch.zeros(B, dtype=torch.int32), torch.zeros(B, Lv, d, h)),
       ["prev_row", "context_row", "row", "vcaches"], ["upper", "vcaches_out"])
    do("decoder_pixel", DecoderPixel(m), (torch.zeros(B, C, dtype=torch.int32), torch.zeros(B, dtype=torch.int32),
                                          m.empty_caches(B), torch.zeros(B, d, h), torch.rand(B, C), torch.ones(B)),
       ["prev_values", "col", "caches", "upper", "uniform", "temperature"], ["sample", "nll", "caches_out"])
    do("score", Score(m), cargs, cin, ["nll"])
    do("score_context", ScoreContext(m), ctx_args, ctx_in, ["nll"])
    # one run per row: decoder_row + the row's pixel steps
    path = os.path.join(stage_dir, "sample_row.onnx")
    export_sample_row(m, path, row_graph, B, C, h, d)
    graphs["sample_row"] = graph_info(path, f"{st['name']}/sample_row.onnx")
    return graphs


def first_context_constant(cfg, st, m):
    """Whether the context of the stage's first slice is the same for every image: true when the
    stage starts at slice 0 with no aux plane (the conditioning network sees no pixels, only the
    meta-position). Checked on two different inputs, not assumed."""
    if st["aux_bits"] or st["first_slice"] != 0:
        return False
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randint(0, m.K, (2, S * S, C, N // S, N // S), generator=g) for _ in range(2))
    with torch.no_grad():
        ca, cb = (m.conditioning(x, torch.zeros(2, dtype=torch.int64)) for x in (a, b))
    assert torch.equal(ca, cb), f"{st['name']}: the first slice's context depends on the image"
    return True


def data_description(cfg):
    """What the model was trained, validated and tested on: the manifest's training.images."""
    tr, val, test = datasets(cfg["channels"], limit=cfg["train"].get("limit"))
    tinted = ", colour-tinted" if cfg["channels"] == 3 else ""
    return (f"Fashion-MNIST{tinted}: {tr.shape[0]:,} training images and {val.shape[0]:,} for validation "
            f"(held out of its 60,000 training images), {test.shape[0]:,} test images")


def fixture_images(cfg, n):
    _, _, test = datasets(cfg["channels"], limit=cfg["train"].get("limit"))
    return test[:n]


def nll_fixtures(cfg, models, images):
    """Per-stage, per-slice NLL (nats) of each image, from the PyTorch model."""
    cases = []
    dims = cfg["image_size"] ** 2 * cfg["channels"]
    with torch.no_grad():
        for i in range(images.shape[0]):
            img = images[i:i + 1]
            stages, total = [], 0.0
            for st in cfg["stages"]:
                slices, aux = stage_planes(cfg, st, img)
                per_slice = []
                for t in range(st["first_slice"], st["last_slice"]):
                    nll = models[st["name"]].slice_nll(slices, torch.tensor([t]), aux).double().sum().item()
                    per_slice.append({"slice": t, "nats": nll})
                s_nats = sum(p["nats"] for p in per_slice)
                total += s_nats
                stages.append({"stage": st["name"], "nats": s_nats, "slices": per_slice})
            cases.append({"image": img[0].permute(1, 2, 0).reshape(-1).tolist(), "stages": stages,
                          "nats": total, "bits_per_dim": total / LN2 / dims})
    return cases


def sampling_fixtures(cfg, models, images, seed=7, margin=UNIFORM_MARGIN):
    """Fixed uniforms -> the pixels PyTorch samples: each stage alone (conditioned on the true
    earlier bits of the fixture images) and the whole pipeline from scratch, at each fixture
    temperature.

    The uniforms are drawn from a seeded generator, then moved off the edges of the bins they fall
    in: a uniform within `margin` of its bin's edge (|u - cdf| < margin, in any of the runs that
    read it) is moved 1.5 margins inside the bins of every run that reads it, or, when those bins'
    overlap is narrower than three margins, drawn again. Such a draw would give another value as
    soon as the probabilities moved by less than float32 rounding (another PyTorch, another BLAS,
    onnxruntime, CUDA), and the parity the runtime is held to is exact pixels. A uniform moved within
    every bin it fell in changes no sampled value; one drawn again may change values, and those
    after it. The runs are redone until no draw is within `margin` of an edge, so every fixture
    draw is at least that far from one."""
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    SS, h = S * S, N // S
    B = images.shape[0]
    rng = np.random.default_rng(seed)
    uniforms = {st["name"]: torch.from_numpy(rng.random((B, SS, h, h, C), dtype=np.float32)) for st in cfg["stages"]}
    moved = set()
    redraws = np.random.default_rng(seed + 1)
    for rounds in range(1, 21):
        with recorded_draws(models, uniforms) as draws:
            temperatures = [sampling_runs(cfg, models, images, uniforms, T) for T in FIXTURE_TEMPERATURES]
        near, least = 0, math.inf
        for name, (u, lo, hi) in bins(draws, uniforms).items():
            m = torch.minimum(u - lo, hi - u)               # inf where no draw read the uniform
            least = min(least, m.min().item())
            bad = m < margin
            if bool(bad.any()):
                near += int(bad.sum())
                lo, hi, ub = lo[bad], hi[bad], u[bad]
                inside = torch.minimum(torch.maximum(ub, lo + 1.5 * margin), hi - 1.5 * margin)  # clear of float32 rounding
                again = torch.from_numpy(redraws.random(int(bad.sum()), dtype=np.float32)).double()
                uniforms[name].view(-1)[bad] = torch.where(hi - lo > 3 * margin, inside, again).float()
                moved.update((name, int(i)) for i in bad.nonzero()[:, 0])
        if near == 0:
            break
    else:
        raise SystemExit(f"fixture uniforms: {near} draws still within {margin} of a bin edge after 20 rounds")
    return {"uniforms": {k: v.reshape(-1).tolist() for k, v in uniforms.items()},
            "uniform_layout": "[sample, slice, row, col, channel]",
            "uniform_margin": {"target": margin, "least": least, "moved": len(moved), "rounds": rounds,
                               "draws": sum(int(d[1].numel()) for d in draws)},
            "temperatures": temperatures}


def sampling_runs(cfg, models, images, uniforms, T):
    """One fixture temperature: each stage alone and the whole pipeline, from `uniforms`."""
    S = cfg["subscale"]
    B = images.shape[0]
    temp = torch.full((B,), T)
    per_stage = {}
    for st in cfg["stages"]:
        slices, aux = stage_planes(cfg, st, images)
        # slices the stage generates are zeroed so nothing of the true image leaks in
        slices[:, st["first_slice"]:] = 0
        got, nll = sample_stage(models[st["name"]], slices, aux, uniforms[st["name"]], temp)
        plane = to_image_channels(cfg, from_slices(got, S, cfg.get("slice_order")))   # [B, C, N, N]
        per_stage[st["name"]] = {"plane": plane.permute(0, 2, 3, 1).reshape(B, -1).tolist(),
                                 "nats": nll.tolist()}
    images_out, nll = sample_pipeline(cfg, models, uniforms, temp)
    return {"temperature": T, "stages": per_stage,
            "pipeline": {"images": images_out.permute(0, 2, 3, 1).reshape(B, -1).tolist(), "nats": nll.tolist()}}


def write_fixtures(cfg, models, out_dir, n):
    imgs = fixture_images(cfg, n)
    fixtures = {"nll": nll_fixtures(cfg, models, imgs), "sampling": sampling_fixtures(cfg, models, imgs)}
    with open(os.path.join(out_dir, "fixtures.json"), "w") as f:
        json.dump(fixtures, f)
    um = fixtures["sampling"]["uniform_margin"]
    print(f"fixtures: {um['draws']} draws per round, {um['moved']} uniforms moved off a bin edge or drawn again, "
          f"in {um['rounds']} rounds; least distance {um['least']:.2e}", flush=True)


def sample_grid(cfg, models, path, n=64, temperature=1.0, seed=0):
    from PIL import Image
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    g = torch.Generator().manual_seed(seed)
    uniforms = {st["name"]: torch.rand(n, S * S, N // S, N // S, C, generator=g) for st in cfg["stages"]}
    images, _ = sample_pipeline(cfg, models, uniforms, torch.full((n,), temperature))
    side = int(math.ceil(math.sqrt(n)))
    grid = np.zeros((side * (N + 2), side * (N + 2), C), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, side)
        grid[r * (N + 2) + 1:r * (N + 2) + 1 + N, c * (N + 2) + 1:c * (N + 2) + 1 + N] = images[i].permute(1, 2, 0).numpy()
    img = Image.fromarray(grid[:, :, 0] if C == 1 else grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST)
    img.save(path)


def variant_stages(doc):
    """The command line the variant exporters share (export_row_variants.py, export_score_variants.py:
    --config, --runs, --out): the config, and per stage (stage, trained model, its folder under --out)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = load_config(args.config)

    def stages():
        for st in cfg["stages"]:
            out = os.path.join(args.out, st["name"])
            os.makedirs(out, exist_ok=True)
            yield st, load_stage(cfg, st, args.runs), out
    return cfg, stages()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--models", default="models", help="output folder (models/<name>/ is written)")
    ap.add_argument("--fixture-images", type=int, default=3)
    ap.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                    help="torch.onnx's TorchScript exporter (the shipped graphs; deprecated since PyTorch 2.9) or its "
                         f"dynamo exporter (PyTorch >= 2.6 with onnxscript; opset {DYNAMO_OPSET}, unrolled row graph only)")
    ap.add_argument("--fixtures-only", action="store_true",
                    help="write models/<name>/fixtures.json alone, from the checkpoints, leaving graphs and manifest as they are")
    ap.add_argument("--grid", default="", help="write a grid of 64 samples to this PNG")
    ap.add_argument("--row-graph", choices=["unrolled", "loop"], default="unrolled",
                    help="how sample_row.onnx runs the row's pixels (loop: an ONNX Loop, for comparison)")
    args = ap.parse_args()
    if args.exporter == "dynamo" and args.row_graph != "unrolled":
        ap.error("--exporter dynamo writes the unrolled row graph only")
    EXPORTER["name"] = args.exporter
    torch.manual_seed(0)
    cfg = load_config(args.config)
    out_dir = os.path.join(args.models, cfg["name"])
    os.makedirs(out_dir, exist_ok=True)
    checkpoints = {st["name"]: load_checkpoint(cfg, st, args.runs) for st in cfg["stages"]}
    models = {name: m for name, (m, _) in checkpoints.items()}
    eval_path = os.path.join(args.runs, cfg["name"], "eval.json")
    ev = None
    if os.path.exists(eval_path):
        with open(eval_path) as f:
            ev = json.load(f)
        # the test figure must be of these checkpoints (training resumed after evaluate.py left a stale one)
        for st in cfg["stages"]:
            was = ev["stages"].get(st["name"], {}).get("checkpoint_step")
            now = checkpoints[st["name"]][1]
            if was is not None and now is not None and was != now:
                raise SystemExit(f"{eval_path} scored {st['name']}/best.pt of step {was}; it is now of step {now}: "
                                 f"run evaluate.py --config {args.config} --runs {args.runs} again")

    if args.fixtures_only:
        write_fixtures(cfg, models, out_dir, args.fixture_images)
        return
    stages = []
    for st in cfg["stages"]:
        m = models[st["name"]]
        tr_path = os.path.join(args.runs, cfg["name"], st["name"], "train.json")
        tr = json.load(open(tr_path)) if os.path.exists(tr_path) else {}
        stages.append({
            "name": st["name"], "role": st["role"], "bits": st["bits"], "shift": st["shift"],
            "firstSlice": st["first_slice"], "lastSlice": st["last_slice"],
            "firstContextConstant": first_context_constant(cfg, st, m),
            "aux": ({"shift": st["shift"] + st["bits"], "bits": st["aux_bits"]} if st["aux_bits"] else None),
            "feeds": ("slices before firstSlice come from the previous stage of the same bits; "
                      + ("the aux plane is the image's higher bits" if st["aux_bits"] else "no aux plane")),
            "width": m.d, "classes": m.K, "parameters": parameter_count(m),
            "net": st.get("net", {}),
            "graphs": export_stage(cfg, st, m, out_dir, args.row_graph),
            "training": {k: tr.get(k) for k in ("steps", "train_seconds", "best_val_bits_per_dim", "batch", "hardware", "torch")},
            "testBitsPerDim": ev["stages"][st["name"]]["bits_per_dim"] if ev else None,
        })
        print(f"exported {cfg['name']}/{st['name']}", flush=True)

    S = cfg["subscale"]
    manifest = {
        "schemaVersion": SCHEMA_VERSION,
        "name": cfg["name"],
        "description": cfg["description"],
        "image": {"height": cfg["image_size"], "width": cfg["image_size"], "channels": cfg["channels"],
                  "channelOrder": cfg["channel_order"], "bitDepth": cfg["bit_depth"], "layout": "HWC"},
        "subscaleFactor": S,
        "sliceOrder": cfg["slice_order"],
        "stages": stages,
        "sampling": {"method": "inverse CDF of softmax(logits / temperature) with one uniform per sub-pixel",
                     "uniformOrder": "stage, slice, row, column, channel: one uniform per sub-pixel, in the order they are sampled",
                     "rowGraph": args.row_graph},
        "export": {"exporter": args.exporter, "opset": DYNAMO_OPSET if args.exporter == "dynamo" else OPSET,
                   "torch": torch.__version__, "onnx": onnx.__version__},
        "evaluation": ({"testImages": ev["images"], "testBitsPerDim": ev["bits_per_dim"],
                        "denominator": "H*W*C real pixels"} if ev else None),
        "training": {"data": cfg["data"], "config": cfg, "images": data_description(cfg)},
        "fixtures": "fixtures.json",
        "parameters": sum(s["parameters"] for s in stages),
    }
    write_fixtures(cfg, models, out_dir, args.fixture_images)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    if args.grid:
        sample_grid(cfg, models, args.grid)
    print(f"wrote {out_dir}")


if __name__ == "__main__":
    main()
