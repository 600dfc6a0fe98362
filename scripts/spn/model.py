"""The Subscale Pixel Network: subscale slicing, conditioning network and slice decoder.

One `SPN` module is one stage of Multidimensional Upscaling. It models a plane of `bits` bits of
an N x N x C image, cut into S*S slices, and generates the slices `first_slice .. S*S - 1`
(earlier slices are given). An optional auxiliary plane (the higher bits, for a depth upscaler)
is stacked into the conditioning input.

The slice decoder is a vertical stack over the rows above (plus the context embedding), a causal
horizontal stack over the current row, and a per-channel head. Scoring and training run it over
the whole slice at once (teacher forcing: `slice_nll`). Sampling advances it from small caches so
that each position is computed once: `upper_step` (one row, from a cache of the row above) and
`pixel_step` (one pixel, every channel, from per-layer partial sums of the row so far).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def raster_order(S):
    """The slice offsets [i, j] in raster order: slice k is [k // S, k % S]."""
    return [[i, j] for i in range(S) for j in range(S)]


def check_order(order, S):
    """A slice order: every offset [i, j] (0 <= i, j < S) once."""
    if sorted(map(tuple, order)) != [tuple(o) for o in raster_order(S)]:
        raise ValueError(f"slice_order {order} must list each of the {S * S} offsets [i, j] with 0 <= i, j < {S} once")
    return order


def _raster_index(order, S):
    return [i * S + j for i, j in order]


def to_slices(x, S, order=None):
    """[B, C, N, N] -> [B, S*S, C, N/S, N/S]; slice k is x[..., i::S, j::S] for [i, j] = order[k]
    (raster order, [k // S, k % S], when order is None)."""
    B, C, N, M = x.shape
    h, w = N // S, M // S
    s = x.reshape(B, C, h, S, w, S).permute(0, 3, 5, 1, 2, 4).reshape(B, S * S, C, h, w)
    return s if order is None else s[:, _raster_index(order, S)]


def from_slices(s, S, order=None):
    """Inverse of to_slices."""
    B, SS, C, h, w = s.shape
    if order is not None:
        inverse = [0] * SS
        for k, r in enumerate(_raster_index(order, S)):
            inverse[r] = k
        s = s[:, inverse]
    return s.reshape(B, S, S, C, h, w).permute(0, 3, 4, 1, 5, 2).reshape(B, C, h * S, w * S)


def split_depth(x, low_bits):
    """8-bit values -> (high plane, low plane)."""
    return x >> low_bits, x & ((1 << low_bits) - 1)


class ResBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c1 = nn.Conv2d(d, d, 3, padding=1)
        self.c2 = nn.Conv2d(d, d, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(F.relu(x))))


class SPN(nn.Module):
    def __init__(self, image_size=28, channels=1, subscale=2, bits=8, first_slice=0, aux_bits=0,
                 width=64, cond_blocks=3, upper_layers=3, row_layers=3, row_kernel=3,
                 last_slice=None):
        super().__init__()
        assert image_size % subscale == 0, "the subscale factor must divide the image size"
        self.N, self.C, self.S, self.bits = image_size, channels, subscale, bits
        self.K = 1 << bits
        self.aux_bits = aux_bits
        self.first_slice = first_slice
        self.last_slice = subscale * subscale if last_slice is None else last_slice
        self.h = image_size // subscale
        self.d = width
        self.row_kernel = row_kernel
        SS, C, d, h = subscale * subscale, channels, width, self.h
        in_ch = SS * C + SS + (SS * C if aux_bits else 0)
        # conditioning network: slices so far (+ aux plane) + one-hot meta-position -> context
        self.cond_in = nn.Conv2d(in_ch, d, 3, padding=1)
        self.cond_pos = nn.Parameter(torch.zeros(1, d, h, h))
        self.cond_blocks = nn.ModuleList([ResBlock(d) for _ in range(cond_blocks)])
        self.cond_out = nn.Conv2d(d, d, 1)
        # slice decoder
        self.embed = nn.Embedding(C * self.K, d)          # value of channel c -> vector
        self.upper_convs = nn.ModuleList([nn.Conv2d(d, d, (2, 3)) for _ in range(upper_layers)])
        self.row_convs = nn.ModuleList([nn.Conv2d(d, d, (1, row_kernel)) for _ in range(row_layers)])
        self.row_mix = nn.ModuleList([nn.Conv2d(d, d, 1) for _ in range(row_layers)])
        self.chan_embed = nn.Embedding(C * self.K, d)     # earlier channels of the same pixel
        self.chan_bias = nn.Parameter(torch.zeros(C, d))
        self.head1 = nn.Linear(d, d)
        self.head2 = nn.Linear(d, self.K)

    # ---- conditioning network -------------------------------------------------------------
    def conditioning(self, slices, target, aux=None):
        """slices int64 [B, SS, C, h, w] (values at or after `target` are ignored),
        target int64 [B], aux int64 [B, SS, C, h, w] or None -> context [B, d, h, w]."""
        B, SS, C, h, w = slices.shape
        idx = torch.arange(SS, device=slices.device).view(1, SS)
        known = (idx < target.view(-1, 1)).to(torch.float32)                  # [B, SS]
        x = (slices.to(torch.float32) * (2.0 / (self.K - 1)) - 1.0) * known.view(-1, SS, 1, 1, 1)
        onehot = (idx == target.view(-1, 1)).to(torch.float32).view(-1, SS, 1, 1).expand(-1, SS, h, w)
        parts = [x.reshape(-1, SS * C, h, w), onehot]
        if self.aux_bits:
            a = aux.to(torch.float32) * (2.0 / ((1 << self.aux_bits) - 1)) - 1.0
            parts.append(a.reshape(-1, SS * C, h, w))
        z = self.cond_in(torch.cat(parts, dim=1)) + self.cond_pos
        for blk in self.cond_blocks:
            z = blk(z)
        return self.cond_out(F.relu(z))

    # ---- slice decoder --------------------------------------------------------------------
    def embed_values(self, y):
        """y int64 [B, C, H, W] -> [B, d, H, W] (sum of per-channel value embeddings)."""
        offs = (torch.arange(self.C, device=y.device) * self.K).view(1, -1, 1, 1)
        e = self.embed(y + offs)                        # [B, C, H, W, d]
        return e.sum(1).permute(0, 3, 1, 2)

    def upper(self, y, context):
        """Rows strictly above each position, plus the context: [B, d, h, w]."""
        e = self.embed_values(y)
        u = self.shifted(e, down=True) + context
        for conv in self.upper_convs:
            u = u + conv(F.pad(F.relu(u), (1, 1, 1, 0)))        # looks at rows r-1 and r only
        return u

    def row_features(self, y_rows, upper, last_bias=None):
        """Horizontal causal stack. y_rows int64 [B, C, R, w], upper [B, d, R, w] -> [B, d, R, w].
        last_bias [d], if given, is added with the last mix's bias."""
        e = self.embed_values(y_rows)
        g = self.shifted(e, down=False) + upper
        k = self.row_kernel
        for l, (conv, mix) in enumerate(zip(self.row_convs, self.row_mix)):
            h = F.relu(conv(F.pad(F.relu(g), (k - 1, 0, 0, 0))))
            last = l == len(self.row_convs) - 1
            g = g + (F.conv2d(h, mix.weight, mix.bias + last_bias) if last and last_bias is not None else mix(h))
        return g

    # The scoring graphs are traced with this set (export.py), the same function laid out for
    # onnxruntime's blocked (NCHWc) convolutions: the shifts become depthwise convolutions, so the
    # decoder stays in that layout with each residual added inside its convolution; and for C = 1
    # the head runs on [B*h*w, d] rows (Gemms with their bias and relu) with no channel prefix
    # (channel 0's is zero). With spn/graph_pass.py, the likelihood graphs run 1.13-1.32x faster
    # than the plain trace (npm run bench:score-graph); training and the reference run the plain path.
    graph_layout = False

    def shifted(self, e, down):
        """e [B, d, H, W] moved one row down (`down`) or one column right, zeros coming in: what
        each position sees of the row above / the pixel to its left. As a depthwise convolution
        (graph_layout) the result is the same bit for bit (1 * x + 0 * y)."""
        if not self.graph_layout:
            return F.pad(e, (0, 0, 1, 0))[:, :, :-1, :] if down else F.pad(e, (1, 0, 0, 0))[:, :, :, :-1]
        w = e.new_zeros(self.d, 1, 2, 1) if down else e.new_zeros(self.d, 1, 1, 2)
        w[:, 0, 0, 0] = 1.0
        return F.conv2d(F.pad(e, (0, 0, 1, 0) if down else (1, 0, 0, 0)), w, groups=self.d)

    def head(self, g, y_pix):
        """g [..., d] features of a pixel, y_pix int64 [..., C] its values -> logits [..., C, K].
        Channel c sees only channels < c of the same pixel."""
        C = self.C
        offs = torch.arange(C, device=y_pix.device) * self.K
        ce = self.chan_embed(y_pix + offs)                          # [..., C, d]
        # exclusive prefix sum over channels: channel c gets sum_{j<c} ce_j (shifted, so that
        # channel c's own value cannot leak in through rounding)
        prefix = F.pad(torch.cumsum(ce, dim=-2), (0, 0, 1, 0))[..., :-1, :]
        z = g.unsqueeze(-2) + prefix + self.chan_bias
        return self.head2(F.relu(self.head1(F.relu(z))))

    def slice_logits(self, y, context):
        """Teacher-forced logits of a whole target slice. y [B, C, h, w] -> [B, h, w, C, K]."""
        g = self.row_features(y, self.upper(y, context))
        return self.head(g.permute(0, 2, 3, 1), y.permute(0, 2, 3, 1))

    # ---- training / scoring ---------------------------------------------------------------
    def slice_nll(self, slices, target, aux=None):
        """NLL in nats of each sub-pixel of the target slice: [B, C, h, w]."""
        B, SS, C, h, w = slices.shape
        context = self.conditioning(slices, target, aux)
        y = torch.gather(slices, 1, target.view(-1, 1, 1, 1, 1).expand(-1, 1, C, h, w))[:, 0]
        return self.nll_given_context(y, context)

    def nll_given_context(self, y, context):
        """NLL in nats of each sub-pixel of slice y [B, C, h, w] given its context [B, d, h, w].

        The first slice's context does not depend on the image when the stage has no aux plane
        (nothing is known yet and the meta-position is fixed), so a runtime can compute it once and
        score that slice from here, without the conditioning network."""
        if self.graph_layout and self.C == 1:
            # channel 0's bias joins the last mix's bias: the same sum, rounded in another order
            g = self.row_features(y, self.upper(y, context), last_bias=self.chan_bias[0])
            B, _, h, w = y.shape
            z = F.relu(g).permute(0, 2, 3, 1).reshape(-1, self.d)                                # [B*h*w, d]
            logits = self.head2(F.relu(self.head1(z)))                                          # 2-D: Gemms
            nll = -F.log_softmax(logits, dim=-1).gather(1, y.reshape(-1, 1))
            return nll.view(B, 1, h, w)
        logits = self.slice_logits(y, context)                              # [B, h, w, C, K]
        logp = F.log_softmax(logits, dim=-1)
        nll = -logp.gather(-1, y.permute(0, 2, 3, 1).unsqueeze(-1))[..., 0]
        return nll.permute(0, 3, 1, 2)

    # ---- sampling steps (exported as graphs) ----------------------------------------------
    # (indexing [:, :, 0] rather than squeeze() throughout: squeeze on a dynamic axis exports as an If node)
    def upper_step(self, prev_row, context_row, row, caches):
        """The vertical context of row r from a cache, as upper() computes it: each layer looks at
        rows r-1 and r only, so row r needs each layer's (relu'd) input at row r-1.

        prev_row int64 [B, C, w] (row r-1 of the slice; ignored at r = 0), context_row [B, d, w],
        row int64 [B], caches [B, L, d, w] -> (upper [B, d, w], new caches [B, L, d, w])."""
        e = self.embed_values(prev_row.unsqueeze(2))[:, :, 0] * (row > 0).to(torch.float32).view(-1, 1, 1)
        u = e + context_row
        new_caches = []
        for l, conv in enumerate(self.upper_convs):
            a = F.relu(u)
            two = torch.stack([caches[:, l], a], dim=2)                              # [B, d, 2, w]
            u = u + F.conv2d(two, conv.weight, conv.bias, padding=(0, 1))[:, :, 0]
            new_caches.append(a)
        return u, torch.stack(new_caches, 1)

    def empty_upper_caches(self, B, w):
        return torch.zeros(B, len(self.upper_convs), self.d, w)

    def pixel_step(self, prev_values, col, caches, upper, uniform, temperature):
        """One pixel of the row, every channel in order, from a small cache.

        prev_values int64 [B, C] (the pixel at col - 1; ignored at col 0), col int64 [B],
        caches [B, L, k-1, d+1] (each layer's pending partial sums, see `pixel_core`; ignored at
        col 0), upper [B, d, w] (the row's upper context), uniform [B, C], temperature [B]
        -> (samples int64 [B, C], nll [B, C] under the model at temperature 1, new caches)."""
        up = torch.gather(upper, 2, col.view(-1, 1, 1).expand(-1, self.d, 1))[:, :, 0]          # [B, d]
        return self.pixel_from(prev_values, (col > 0).view(-1, 1), up, caches, uniform, temperature)

    def pixel_from(self, prev_values, not_first, up, caches, uniform, temperature):
        """pixel_step once the pixel's upper context `up` [B, d] is picked out; not_first (bool
        [B, 1], or a scalar when every lane is at the same column) is true past column 0."""
        C, L, k = self.C, len(self.row_convs), self.row_kernel
        x = self.embed_pixel([prev_values[:, ch] for ch in range(C)]) * not_first.to(torch.float32) + up
        taps = self.row_taps()
        # at column 0 nothing is owed yet but the bias (where: exact, unlike a blend)
        owed = [[torch.where(not_first, caches[:, l, j], taps[l][1]) for j in range(k - 1)] for l in range(L)]
        samples, logits, owed = self.pixel_core(x, owed, [uniform[:, ch:ch + 1] for ch in range(C)],
                                                temperature.view(-1, 1), taps)
        s = torch.stack(samples, 1)                                                                # [B, C]
        nll = -torch.log_softmax(torch.stack(logits, 1), dim=-1).gather(2, s.unsqueeze(2))[..., 0]
        return s, nll, torch.stack([torch.stack(o, 1) for o in owed], 1)

    def embed_pixel(self, values):
        """values: per channel, int64 [B] -> [B, d], the channels' value embeddings added in order."""
        e = None
        for ch, v in enumerate(values):
            x = self.embed(v if ch == 0 else v + ch * self.K)
            e = x if e is None else e + x
        return e

    def row_taps(self):
        """The horizontal stack's and head's weights as the pixel steps use them, built once per
        row (or per pixel_step call), not per pixel. Per layer (taps, bias, mix):
        taps[i] [d, d+1] is what a position's (relu'd) input adds to the position i steps later
        (tap 0: itself); bias [d+1] is the conv's bias and a 1. That extra column is 0 in every
        tap, so the conv's output carries an exact 1 through the relu, and mix [d+1, d] (the 1x1
        mix weight with its bias as the last row) applies weight and bias in one product. The last
        layer's mix bias also carries the head's channel-0 bias, which the head then adds only as
        the difference for channels > 0 (`chan_delta`)."""
        k, L, out = self.row_kernel, len(self.row_convs), []
        for l, (conv, mix) in enumerate(zip(self.row_convs, self.row_mix)):
            zero = conv.weight.new_zeros(self.d, 1)
            taps = [torch.cat([conv.weight[:, :, 0, k - 1 - i].t(), zero], 1) for i in range(k)]
            bias = torch.cat([conv.bias, conv.bias.new_ones(1)])
            bm = mix.bias + self.chan_bias[0] if l == L - 1 else mix.bias
            out.append((taps, bias, torch.cat([mix.weight[:, :, 0, 0].t(), bm.view(1, -1)], 0)))
        return out

    def chan_delta(self, ch):
        return self.chan_bias[ch] - self.chan_bias[0]

    def sample_index(self, logits, u, t_col):
        """Inverse-CDF sampling, so that a fixed uniform number fixes the sample: the first index
        whose cumulative probability under softmax(logits / T) reaches u.
        logits [B, K], u [B, 1] in [0, 1), t_col temperature [B, 1] -> int64 [B]."""
        return self.index_in_cdf(self.sample_cdf(logits, t_col), u)

    def sample_cdf(self, logits, t_col):
        """The cumulative probabilities sample_index draws from: [B, K]."""
        return torch.cumsum(torch.softmax(logits / t_col, dim=-1), dim=-1)

    def index_in_cdf(self, cdf, u):
        """The first index whose cumulative probability reaches u: the value k with cdf[k-1] < u <= cdf[k]."""
        # counted in float32 (exact up to 2^24): onnxruntime sums float rows faster than int64 ones
        # (sample_row at batch 16 about a tenth faster; one-off measurement, commit dfefbda)
        return torch.clamp((cdf < u).to(torch.float32).sum(-1), max=self.K - 1).to(torch.int64)

    def pixel_core(self, x, owed, u, t_col, taps):
        """The horizontal stack and head at one pixel, as a shift register of partial sums.

        Layer l's causal conv is h_t = b + sum_i W_i relu(x_{t-i}) (i < k). Rather than keeping
        the last k-1 inputs and redoing the whole kernel, each step multiplies its own input once
        by every tap and keeps the k-1 sums still owed to the next positions: owed[l][j] is what
        position t+j has been given so far, bias included (a new position starts from the bias).
        The FLOPs are those of the conv; the step needs no concat, slice or gather of caches.

        Each tap is one product added to what is owed: one Gemm node with its C input, and in
        eager PyTorch one addmm, with no split of a product by all k taps and no separate adds.

        x [B, d] (the pixel's input: upper context + the previous pixel's embedding),
        owed: per layer, k-1 tensors [B, d+1], or None at the row's first pixel (the bias only),
        u: per channel, uniforms [B, 1]; t_col: temperature [B, 1]; taps: row_taps()
        -> (samples: per channel int64 [B], logits: per channel [B, K] at temperature 1, new owed)."""
        C, k, K = self.C, self.row_kernel, self.K
        new_owed = []
        for (W, b, mix), o in zip(taps, owed):
            a = F.relu(x)
            o = [b] * (k - 1) if o is None else o
            given = o[1:] + [b]                                   # owed to t+1.., before this pixel
            h = torch.addmm(o[0], a, W[0])
            new_owed.append([torch.addmm(g, a, Wi) for g, Wi in zip(given, W[1:])])
            x = torch.addmm(x, F.relu(h), mix)          # x + relu(h) W_mix + b_mix, one Gemm
        samples, logits = [], []
        prefix = None
        for ch in range(C):
            z = x if prefix is None else x + (prefix + self.chan_delta(ch))
            lg = self.head2(F.relu(self.head1(F.relu(z))))                                      # [B, K]
            s = self.sample_index(lg, u[ch], t_col)                                              # [B]
            samples.append(s)
            logits.append(lg)
            if ch + 1 < C:
                e = self.chan_embed(s + ch * K)
                prefix = e if prefix is None else prefix + e
        return samples, logits, new_owed

    def sample_row(self, prev_row, context_row, row, vcaches, uniform, temperature):
        """A whole row in one call, unrolled over its w pixels (what sample_row.onnx exports):
        upper_step, then pixel_core per column, the first pixel with nothing owed; the sampled
        values' NLL once for the row, from the pixels' logits.

        uniform [B, w, C] -> (new vcaches, row values int64 [B, C, w], nll [B, C, w])."""
        C, w = self.C, self.h
        upper, vcaches = self.upper_step(prev_row, context_row, row, vcaches)
        # split along a non-batch axis: the pieces come out [B, d] and [B, 1], with no squeeze per pixel
        ups = torch.split(upper.transpose(1, 2).flatten(1), self.d, 1)                             # w x [B, d]
        us = torch.split(uniform.flatten(1), 1, 1)                                                 # w*C x [B, 1]
        t_col = temperature.view(-1, 1)
        taps = self.row_taps()
        owed = [None] * len(self.row_convs)
        values, logits, prev = [], [], None
        for c in range(w):
            x = ups[c] if prev is None else ups[c] + self.embed_pixel(prev)
            prev, lg, owed = self.pixel_core(x, owed, [us[c * C + ch] for ch in range(C)], t_col, taps)
            values += prev
            logits += lg
        s = torch.cat(values, 0)                                                                   # [w*C*B], (c, ch, b)
        nll = -torch.log_softmax(torch.cat(logits, 0), dim=-1).gather(1, s.view(-1, 1))
        return vcaches, s.view(w, C, -1).permute(2, 1, 0), nll.view(w, C, -1).permute(2, 1, 0)

    def empty_caches(self, B):
        """pixel_step's caches at a row's first pixel (ignored there): per layer, k-1 owed sums of
        the conv's d outputs and the extra column (see row_taps)."""
        return torch.zeros(B, len(self.row_convs), self.row_kernel - 1, self.d + 1)


def spn_from_config(cfg):
    keys = ["image_size", "channels", "subscale", "bits", "first_slice", "last_slice", "aux_bits",
            "width", "cond_blocks", "upper_layers", "row_layers", "row_kernel"]
    return SPN(**{k: cfg[k] for k in keys if k in cfg})


def parameter_count(m):
    return sum(p.numel() for p in m.parameters())


LN2 = math.log(2.0)
