"""Other formulations of `SPN.sample_row`, for `npm run bench:row-graph` to time against the shipped
one. Each computes the same function (the same pixels from the same uniforms, NLL within float32
rounding); only the graph it traces to differs. None is shipped: see docs/bench-row-graph.md.

  window        the horizontal stack from a window of the last k inputs: per layer and pixel one
                Concat and one Gemm over [a_{t-2}, a_{t-1}, a_t] instead of a Gemm per tap onto
                the sums owed (5 -> 4 nodes per layer, the same FLOPs)
  matmul-upper  the vertical stack channels-last: each (2, 3) convolution as one MatMul over the
                row's six shifted copies [B, w, 6d] instead of onnxruntime's blocked (NCHWc) Conv
                with its layout reorders
  cumsum-t      the sampled index from a CumSum over the first axis of the transposed
                probabilities [K, B] instead of along the last axis of [B, K] (for spn8's
                K = 256 the CumSum is a visible part of a batched row)

`traced(m, name)` sets the variant on the model instance for the time of an export.
"""
import contextlib
import types

import torch
import torch.nn.functional as F

VARIANTS = ("window", "matmul-upper", "cumsum-t")


def _head(m, x, u, t_col):
    """The per-pixel head and sampling, as SPN.pixel_core does it after the horizontal stack."""
    samples, logits, prefix = [], [], None
    for ch in range(m.C):
        z = x if prefix is None else x + (prefix + m.chan_delta(ch))
        lg = m.head2(F.relu(m.head1(F.relu(z))))
        s = m.sample_index(lg, u[ch], t_col)
        samples.append(s)
        logits.append(lg)
        if ch + 1 < m.C:
            e = m.chan_embed(s + ch * m.K)
            prefix = e if prefix is None else prefix + e
    return samples, logits


def _window_taps(m):
    """Per layer: the conv's k taps stacked oldest input first [k*d, d+1] (the extra column, 0 in
    every tap, carries an exact 1 through the relu, as in SPN.row_taps), bias [d+1], mix [d+1, d]."""
    k, L, out = m.row_kernel, len(m.row_convs), []
    for l, (conv, mix) in enumerate(zip(m.row_convs, m.row_mix)):
        W = torch.cat([torch.cat([conv.weight[:, :, 0, j].t() for j in range(k)], 0), conv.weight.new_zeros(k * m.d, 1)], 1)
        bm = mix.bias + m.chan_bias[0] if l == L - 1 else mix.bias
        out.append((W, torch.cat([conv.bias, conv.bias.new_ones(1)]), torch.cat([mix.weight[:, :, 0, 0].t(), bm.view(1, -1)], 0)))
    return out


def _upper_matmul(m, prev_row, context_row, row, caches):
    """SPN.upper_step channels-last: u [B, w, d]; caches keep their [B, L, d, w] layout."""
    d, w = m.d, prev_row.shape[-1]
    e = m.embed_values(prev_row.unsqueeze(2))[:, :, 0].transpose(1, 2)
    u = e * (row > 0).to(torch.float32).view(-1, 1, 1) + context_row.transpose(1, 2)
    cl = caches.transpose(2, 3)
    new = []
    for l, conv in enumerate(m.upper_convs):
        a = F.relu(u)
        p = F.pad(torch.cat([cl[:, l], a], -1), (0, 0, 1, 1))                          # [B, w+2, 2d]
        X = torch.cat([p[:, 0:w], p[:, 1:w + 1], p[:, 2:w + 2]], -1)                   # [B, w, 6d]: (dx, dy, cin)
        u = u + torch.matmul(X, conv.weight.permute(3, 2, 1, 0).reshape(6 * d, d)) + conv.bias
        new.append(a)
    return u.transpose(1, 2), torch.stack(new, 1).transpose(2, 3)


def _sample_row(m, prev_row, context_row, row, vcaches, uniform, temperature, upper_step, window):
    """SPN.sample_row with the given upper step and, if `window`, the windowed horizontal stack."""
    C, w, k, d = m.C, m.h, m.row_kernel, m.d
    upper, vcaches = upper_step(prev_row, context_row, row, vcaches)
    ups = torch.split(upper.transpose(1, 2).flatten(1), d, 1)
    us = torch.split(uniform.flatten(1), 1, 1)
    t_col = temperature.view(-1, 1)
    taps = _window_taps(m) if window else m.row_taps()
    state = [[] for _ in m.row_convs] if window else [None] * len(m.row_convs)
    values, logits, prev = [], [], None
    for c in range(w):
        x = ups[c] if prev is None else ups[c] + m.embed_pixel(prev)
        u = [us[c * C + ch] for ch in range(C)]
        if window:
            for l, (W, b, mix) in enumerate(taps):
                win = (state[l] + [F.relu(x)])[-k:]
                X = win[0] if len(win) == 1 else torch.cat(win, 1)
                x = torch.addmm(x, F.relu(torch.addmm(b, X, W[(k - len(win)) * d:])), mix)
                state[l] = win[1:] if len(win) == k else win
            prev, lg = _head(m, x, u, t_col)
        else:
            prev, lg, state = m.pixel_core(x, state, u, t_col, taps)
        values += prev
        logits += lg
    s = torch.cat(values, 0)
    nll = -torch.log_softmax(torch.cat(logits, 0), dim=-1).gather(1, s.view(-1, 1))
    return vcaches, s.view(w, C, -1).permute(2, 1, 0), nll.view(w, C, -1).permute(2, 1, 0)


def _sample_index_transposed(m, logits, u, t_col):
    cdf = torch.cumsum(torch.softmax(logits / t_col, dim=-1).t(), dim=0)                 # [K, B]
    return torch.clamp((cdf < u.t()).to(torch.float32).sum(0), max=m.K - 1).to(torch.int64)


@contextlib.contextmanager
def traced(m, name):
    """The model with `name`'s formulation for the time of the block (instance attributes, removed
    afterwards, so the class's methods are untouched)."""
    assert name in VARIANTS, name
    if name == "cumsum-t":
        m.sample_index = types.MethodType(_sample_index_transposed, m)
    else:
        def sample_row(self, *args):
            step = (lambda *a: _upper_matmul(self, *a)) if name == "matmul-upper" else self.upper_step
            return _sample_row(self, *args, upper_step=step, window=name == "window")
        m.sample_row = types.MethodType(sample_row, m)
    try:
        yield m
    finally:
        m.__dict__.pop("sample_index", None)
        m.__dict__.pop("sample_row", None)
