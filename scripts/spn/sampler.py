"""The PyTorch reference sampler: cached (context once per slice, the vertical stack one row at a
time from a cache of the row above, the horizontal stack one pixel at a time from per-layer
partial sums: `SPN.sample_row`, the function sample_row.onnx exports),
batched, under torch.no_grad. It consumes uniform random numbers in a fixed order, so the same
numbers give the same pixels in the TypeScript runtime:

  for each stage: for each slice t in [first, last): for each row r: for each column c:
      one decoder step for the pixel, channel ch drawn with uniform[stage][b, t, r, c, ch]
"""
import contextlib
import math
import types
import warnings

import torch

from .model import from_slices, to_slices
from .stages import to_image_channels, to_model_channels


@torch.no_grad()
def sample_stage(model, slices, aux, uniform, temperature, start=0):
    """slices int64 [B, SS, C, h, w] (slices before model.first_slice given), aux or None,
    uniform float32 [B, SS, h, w, C], temperature float32 [B]; slices before `start` are kept too.
    Returns (slices, nll in nats of the generated sub-pixels [B])."""
    if not bool((temperature > 0).all()):
        raise ValueError("temperature must be positive")   # (0 or less: NaN probabilities, every value class 0)
    slices = slices.clone()
    B, SS, C, h, w = slices.shape
    nll = torch.zeros(B, dtype=torch.float64)
    for t in range(max(model.first_slice, start), model.last_slice):
        target = torch.full((B,), t, dtype=torch.int64)
        context = model.conditioning(slices, target, aux)
        y = torch.zeros(B, C, h, w, dtype=torch.int64)
        vcaches = model.empty_upper_caches(B, w)
        for r in range(h):
            prev_row = y[:, :, r - 1] if r > 0 else torch.zeros(B, C, w, dtype=torch.int64)
            vcaches, values, n = model.sample_row(prev_row, context[:, :, r], torch.full((B,), r, dtype=torch.int64), vcaches,
                                                  uniform[:, t, r], temperature)
            y[:, :, r] = values
            nll += n.double().sum((1, 2))
        slices[:, t] = y
    return slices, nll


@torch.no_grad()
def sample_pipeline(cfg, models, uniforms, temperature, stop_after=None, given=None):
    """Runs the stages in order. models: {stage name: SPN}; uniforms: {stage name: tensor};
    given: uint8 images [B, C, N, N] whose bits seed a conditional run (None: from scratch).
    Returns uint8 images [B, C, N, N] (bits of skipped stages are 0) and nll in nats [B]. Images
    in and out hold their channels in stages.IMAGE_CHANNELS order; the model, in its own."""
    S, C, N = cfg["subscale"], cfg["channels"], cfg["image_size"]
    B = temperature.shape[0]
    image = torch.zeros(B, C, N, N, dtype=torch.int64) if given is None else to_model_channels(cfg, given.to(torch.int64))
    nll = torch.zeros(B, dtype=torch.float64)
    for st in cfg["stages"]:
        m = models[st["name"]]
        order = cfg.get("slice_order")
        plane = to_slices((image >> st["shift"]) & ((1 << st["bits"]) - 1), S, order)
        aux = to_slices(image >> (st["shift"] + st["bits"]), S, order) if st["aux_bits"] else None
        plane, n = sample_stage(m, plane, aux, uniforms[st["name"]], temperature)
        nll += n
        mask = ((1 << st["bits"]) - 1) << st["shift"]
        image = (image & ~mask) | (from_slices(plane, S, order) << st["shift"])
        if st["name"] == stop_after:
            break
    return to_image_channels(cfg, image).to(torch.uint8), nll


@contextlib.contextmanager
def recorded_draws(models, uniforms):
    """Records every draw the models make from `uniforms` ({stage name: float32 tensor, contiguous})
    for the time of the block: yields a list that gains, per sample_index call, (stage name, flat
    indices into that stage's uniforms [B], the chosen bin's bounds lo [B] and hi [B]). A draw picks
    the index k with cdf[k-1] < u <= cdf[k], so u's distance to the nearer bound is how far the
    probabilities may move (other arithmetic: another PyTorch, BLAS or execution provider) before
    the same u picks another value. The uniform a draw used is found by its address: the sampler
    passes views of the stage's tensor down to sample_index."""
    draws = []
    bases = {name: (u.data_ptr(), u.numel(), u.element_size()) for name, u in uniforms.items()}
    for name, u in uniforms.items():
        assert u.is_contiguous(), f"{name}: uniforms must be contiguous"

    def wrap(m):
        def sample_index(self, logits, u, t_col):   # SPN.sample_index, keeping its cdf
            cdf = self.sample_cdf(logits, t_col)
            k = self.index_in_cdf(cdf, u)
            cdf = cdf.double()
            lo = torch.where(k > 0, cdf.gather(1, (k - 1).clamp(min=0).view(-1, 1))[:, 0], torch.zeros_like(cdf[:, 0]))
            hi = torch.where(k < self.K - 1, cdf.gather(1, k.view(-1, 1))[:, 0], torch.ones_like(cdf[:, 0]))
            for name, (ptr, n, size) in bases.items():
                off = (u.data_ptr() - ptr) // size
                if 0 <= off < n:
                    idx = off + torch.arange(u.shape[0]) * u.stride(0)
                    draws.append((name, idx, lo, hi))
                    break
            else:
                raise AssertionError("a draw's uniform is not a view of the stage's uniforms")
            return k
        m.sample_index = types.MethodType(sample_index, m)

    for m in models.values():
        wrap(m)
    try:
        yield draws
    finally:
        for m in models.values():
            m.__dict__.pop("sample_index", None)


def bins(draws, uniforms):
    """Per stage of recorded_draws: (u, lo, hi) over its uniforms, flat, float64: where u may move
    and every draw that read it still picks the same value (the overlap of the bins it fell in).
    A uniform no draw read has lo = -inf and hi = inf."""
    out = {}
    for name, base in uniforms.items():
        got = [(idx, lo, hi) for n, idx, lo, hi in draws if n == name]
        u = base.reshape(-1).double()
        lo = torch.full_like(u, -math.inf)
        hi = torch.full_like(u, math.inf)
        if got:
            idx = torch.cat([g[0] for g in got])
            with warnings.catch_warnings():   # PyTorch 1.13 calls scatter_reduce a beta
                warnings.simplefilter("ignore", UserWarning)
                lo = lo.scatter_reduce(0, idx, torch.cat([g[1] for g in got]), reduce="amax")
                hi = hi.scatter_reduce(0, idx, torch.cat([g[2] for g in got]), reduce="amin")
        out[name] = (u, lo, hi)
    return out
