"""The `sample_row` graph built with an ONNX `Loop`: the alternative to the unrolled one.

The shipped sample_row.onnx is `SPN.sample_row` traced with its w pixels unrolled (export.py).
This builds the same computation as decoder_row followed by an in-graph `Loop` over the row's
pixels running the decoder_pixel step, with the row's uniform random numbers fed in. It samples
the same pixels; `npm run bench:row-graph` times both (the unrolled graph won, see the README).

torch.onnx cannot trace a data-dependent loop the same way on PyTorch 1.13 and 2.x, so the loop
body is exported as an ordinary graph (one iteration) and wrapped in a Loop node with onnx.helper.
"""
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper


class RowIteration(nn.Module):
    """One pixel of the row (every channel): iteration i is column i."""

    def __init__(self, m, w):
        super().__init__()
        self.m = m
        self.w = w

    def forward(self, it, prev, caches, row_values, nll, upper, uniform, temperature):
        # every lane is at column `it`: plain index_select, no per-lane gather
        col = it.view(1)
        up = torch.index_select(upper, 2, col)[:, :, 0]                              # [B, d]
        u = torch.index_select(uniform, 1, col)[:, 0]                                # [B, C]
        s, n, caches = self.m.pixel_from(prev.long(), it > 0, up, caches, u, temperature)
        s = s.to(torch.int32)
        mask = (torch.arange(self.w) == it).view(1, 1, self.w)
        row_out = torch.where(mask, s.unsqueeze(-1), row_values)
        nll_out = torch.where(mask, n.unsqueeze(-1), nll)
        return s, caches, row_out, nll_out


def build_sample_row(m, export, row_graph_path, body_path, out_path, B, C, w, d, L, k):
    """export(module, args, path, inputs, outputs) is the project's torch.onnx.export wrapper."""
    it = torch.tensor(0, dtype=torch.int64)
    export(RowIteration(m, w), (it, torch.zeros(B, C, dtype=torch.int32), m.empty_caches(B),
                             torch.zeros(B, C, w, dtype=torch.int32), torch.zeros(B, C, w), torch.zeros(B, d, w),
                             torch.rand(B, w, C), torch.ones(B)),
           body_path, ["iter", "prev_in", "caches_in", "row_in", "nll_in", "upper", "uniform", "temperature"],
           ["prev_out", "caches_out", "row_out", "nll_out"])
    body = onnx.load(body_path).graph
    outer = onnx.load(row_graph_path)
    g = outer.graph

    outer_refs = {"upper", "uniform", "temperature"}
    pre = "loop/"

    def rn(name):
        return name if (name in outer_refs or name == "") else pre + name

    nodes = []
    for n in body.node:
        n2 = onnx.NodeProto()
        n2.CopyFrom(n)
        del n2.input[:]
        n2.input.extend(rn(x) for x in n.input)
        del n2.output[:]
        n2.output.extend(rn(x) for x in n.output)
        n2.name = pre + n.name
        nodes.append(n2)
    inits = []
    for t in body.initializer:
        t2 = onnx.TensorProto()
        t2.CopyFrom(t)
        t2.name = rn(t.name)
        inits.append(t2)
    nodes.append(helper.make_node("Identity", [pre + "cond_in"], [pre + "cond_out"], name=pre + "cond"))
    body_graph = helper.make_graph(
        nodes, "row_loop_body",
        inputs=[helper.make_tensor_value_info(pre + "iter", TensorProto.INT64, []),
                helper.make_tensor_value_info(pre + "cond_in", TensorProto.BOOL, []),
                helper.make_tensor_value_info(pre + "prev_in", TensorProto.INT32, None),
                helper.make_tensor_value_info(pre + "caches_in", TensorProto.FLOAT, None),
                helper.make_tensor_value_info(pre + "row_in", TensorProto.INT32, None),
                helper.make_tensor_value_info(pre + "nll_in", TensorProto.FLOAT, None)],
        outputs=[helper.make_tensor_value_info(pre + "cond_out", TensorProto.BOOL, []),
                 helper.make_tensor_value_info(pre + "prev_out", TensorProto.INT32, None),
                 helper.make_tensor_value_info(pre + "caches_out", TensorProto.FLOAT, None),
                 helper.make_tensor_value_info(pre + "row_out", TensorProto.INT32, None),
                 helper.make_tensor_value_info(pre + "nll_out", TensorProto.FLOAT, None)],
        initializer=inits)

    # outer graph: decoder_row's nodes produce `upper`; add the loop after them
    del g.output[:]
    g.input.extend([helper.make_tensor_value_info("uniform", TensorProto.FLOAT, ["batch", w, C]),
                    helper.make_tensor_value_info("temperature", TensorProto.FLOAT, ["batch"])])
    g.initializer.extend([
        helper.make_tensor("row_loop/trips", TensorProto.INT64, [], [w]),
        helper.make_tensor("row_loop/true", TensorProto.BOOL, [], [True]),
        helper.make_tensor("row_loop/tail_row", TensorProto.INT64, [2], [C, w]),
        helper.make_tensor("row_loop/tail_prev", TensorProto.INT64, [1], [C]),
        helper.make_tensor("row_loop/tail_caches", TensorProto.INT64, [3], [L, k - 1, d + 1]),
        helper.make_tensor("row_loop/zero_idx", TensorProto.INT64, [1], [0]),
    ])

    def zeros(name, tail, dtype):
        return [helper.make_node("Concat", ["row_loop/batch", tail], [name + "_shape"], axis=0),
                helper.make_node("ConstantOfShape", [name + "_shape"], [name],
                                 value=helper.make_tensor("v", dtype, [1], [0]))]
    g.node.extend([
        helper.make_node("Shape", ["upper"], ["row_loop/upper_shape"]),
        helper.make_node("Gather", ["row_loop/upper_shape", "row_loop/zero_idx"], ["row_loop/batch"], axis=0),
        *zeros("row_loop/prev0", "row_loop/tail_prev", TensorProto.INT32),
        *zeros("row_loop/caches0", "row_loop/tail_caches", TensorProto.FLOAT),
        *zeros("row_loop/row0", "row_loop/tail_row", TensorProto.INT32),
        *zeros("row_loop/nll0", "row_loop/tail_row", TensorProto.FLOAT),
        helper.make_node("Loop", ["row_loop/trips", "row_loop/true", "row_loop/prev0", "row_loop/caches0",
                                  "row_loop/row0", "row_loop/nll0"],
                         ["row_loop/prev", "row_loop/caches", "row_values", "nll"], body=body_graph, name="row_loop"),
    ])
    Lv = len(m.upper_convs)
    g.output.extend([helper.make_tensor_value_info("vcaches_out", TensorProto.FLOAT, ["batch", Lv, d, w]),
                     helper.make_tensor_value_info("row_values", TensorProto.INT32, ["batch", C, w]),
                     helper.make_tensor_value_info("nll", TensorProto.FLOAT, ["batch", C, w])])
    g.name = "sample_row"
    onnx.checker.check_model(outer)
    onnx.save(outer, out_path)
