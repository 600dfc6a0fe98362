"""A pass over exported ONNX graphs: zero padding folded into the convolution that follows it.

The decoder pads before its convolutions with `F.pad` (one-sided: the vertical stack sees only the
rows above, the horizontal stack only the pixels to the left), which PyTorch's exporter writes as
a `Pad` node feeding a `Conv` with no padding. A Conv pads by itself, on each side separately, so
the Pad is a copy of the activations that the Conv does not need. onnxruntime has a rewrite that
folds such Pads, but it does not fire on these graphs: their pads are computed by a chain of
constant nodes (ConstantOfShape, Concat, Slice, Transpose, Reshape, Cast), not an initializer.

`fold_pads_into_convs` evaluates those constant chains (a handful of shape ops, in numpy), moves
each qualifying Pad's amounts into its Conv's `pads` attribute, and drops the nodes left unused.
The convolution computes the same sums over the same zero-padded input, so outputs are unchanged
(the likelihood graphs give bit-identical NLLs; the export's parity fixtures check it).
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper

_NP = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(idx)]


def _reshape(x, shape):
    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


_EVAL = {
    "ConstantOfShape": lambda n, x: [np.full(tuple(x[0]), _const_value(n))],
    "Concat": lambda n, x: [np.concatenate(x, axis=_attr(n, "axis"))],
    "Reshape": lambda n, x: [_reshape(x[0], x[1].tolist())],
    "Slice": lambda n, x: [_slice(*x)],
    "Transpose": lambda n, x: [np.transpose(x[0], _attr(n, "perm"))],
    "Cast": lambda n, x: [x[0].astype(_NP[_attr(n, "to")])],
    "Unsqueeze": lambda n, x: [np.expand_dims(x[0], tuple(x[1].tolist()))],
    "Squeeze": lambda n, x: [np.squeeze(x[0], None if len(x) < 2 or x[1] is None else tuple(x[1].tolist()))],
}


def _const_value(node):
    t = _attr(node, "value")
    return numpy_helper.to_array(t).reshape(-1)[0] if t is not None else np.float32(0)


def _constants(graph):
    """Values of the initializers, Constant nodes and the supported ops computed from them."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and _attr(n, "value") is not None:
            values[n.output[0]] = numpy_helper.to_array(_attr(n, "value"))
        elif n.op_type in _EVAL and all(i in values for i in n.input if i):
            try:
                out = _EVAL[n.op_type](n, [values[i] if i else None for i in n.input])
            except (ValueError, TypeError, IndexError, KeyError):
                continue                   # a form this small evaluator does not know: not constant
            values.update(zip(n.output, out))
    return values


def fold_pads_into_convs(model):
    """Returns how many Pad nodes were folded (the model is changed in place)."""
    g = model.graph
    values = _constants(g)
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    folded = []
    for n in g.node:
        if n.op_type != "Pad" or _attr(n, "mode", b"constant") != b"constant" or n.output[0] in outputs:
            continue
        if len(n.input) < 2 or n.input[1] not in values:
            continue
        if len(n.input) > 2 and n.input[2] and (n.input[2] not in values or np.any(values[n.input[2]] != 0)):
            continue
        users = consumers.get(n.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv" or users[0].input[0] != n.output[0]:
            continue
        conv = users[0]
        if _attr(conv, "auto_pad", b"NOTSET") != b"NOTSET":
            continue
        pads = [int(p) for p in values[n.input[1]].tolist()]
        r = len(pads) // 2
        if pads[0] or pads[1] or pads[r] or pads[r + 1] or min(pads) < 0:
            continue                                   # padding on the batch or channel axis
        spatial = pads[2:r] + pads[r + 2:]             # [x1_begin, x2_begin, .., x1_end, x2_end]
        old = _attr(conv, "pads", [0] * len(spatial))
        for a in list(conv.attribute):
            if a.name == "pads":
                conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute("pads", [p + q for p, q in zip(old, spatial)]))
        conv.input[0] = n.input[0]
        folded.append(n)
    for n in folded:
        g.node.remove(n)
    _drop_unused(g)
    return len(folded)


def _inputs_used(nodes):
    """Names that nodes read, including from inside their subgraphs (a Loop body reads outer names)."""
    used = set()
    for n in nodes:
        used.update(n.input)
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                used |= _inputs_used(sub.node)
    return used


def _drop_unused(graph):
    while True:
        used = _inputs_used(graph.node) | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = _inputs_used(graph.node) | {i.name for i in graph.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def fold_file(path):
    model = onnx.load(path)
    n = fold_pads_into_convs(model)
    if n:
        onnx.checker.check_model(model)
        onnx.save(model, path)
    return n


def pads_before_convs(model):
    """How many Pad nodes feed a Conv (what the pass folds where it can)."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    return sum(1 for n in g.node if n.op_type == "Conv" and producer.get(n.input[0]) is not None
               and producer[n.input[0]].op_type == "Pad")


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser(description="Counts, in exported ONNX graphs, the Pad nodes that feed a Conv "
                                 "(what fold_pads_into_convs looks for; export.py runs it on every graph).")
    ap.add_argument("graphs", nargs="+", metavar="GRAPH.onnx")
    args = ap.parse_args()
    print(json.dumps({p: pads_before_convs(onnx.load(p)) for p in args.graphs}))
