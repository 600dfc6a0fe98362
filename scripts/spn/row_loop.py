"""The `sample_row` graph: one run samples a whole row of the target slice.

onnxruntime-node pays about 0.1 ms of fixed cost per run, and one run per sub-pixel makes that
cost dominate sampling. This graph computes the row's upper context, then an ONNX `Loop` over the
row's w*C sub-pixels runs the decoder step inside the graph, with the row's uniform random numbers
fed in, so sampling stays exactly reproducible and costs one run per row.

torch.onnx cannot trace a data-dependent loop the same way on PyTorch 1.13 and 2.x, so the loop
body is exported as an ordinary graph (one iteration) and wrapped in a Loop node with onnx.helper.
"""
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper


class RowIteration(nn.Module):
    """One sub-pixel of the row: iteration i is column i // C, channel i % C."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, it, row_values, nll, upper, uniform, temperature):
        C, w = row_values.shape[1], row_values.shape[2]
        col = torch.div(it, C, rounding_mode="floor").view(1)
        ch = torch.remainder(it, C).view(1)
        colB = col.expand(row_values.shape[0])
        u = torch.index_select(uniform, 1, col)[:, 0]                              # [B, C]
        s, logits = self.m.pixel_step(row_values.long(), upper, colB, u, temperature)
        s_ch = torch.index_select(s, 1, ch)                                          # [B, 1]
        logp = torch.log_softmax(torch.index_select(logits, 1, ch)[:, 0], dim=-1)
        nll_ch = -logp.gather(1, s_ch)                                               # [B, 1]
        mask = (torch.arange(C).view(C, 1) == ch) & (torch.arange(w).view(1, w) == col)
        row_out = torch.where(mask, s_ch.view(-1, 1, 1).to(torch.int32), row_values)
        nll_out = torch.where(mask, nll_ch.view(-1, 1, 1), nll)
        return row_out, nll_out


def reference_sample_row(m, slice_values, context, row, uniform, temperature):
    """What the graph computes, in PyTorch: (row values [B, C, w], nll [B, C, w])."""
    B, C, h, w = slice_values.shape
    upper = m.upper_row(slice_values.long(), context, row.long())
    rv = torch.zeros(B, C, w, dtype=torch.int32)
    nll = torch.zeros(B, C, w)
    it_mod = RowIteration(m)
    for i in range(w * C):
        rv, nll = it_mod(torch.tensor(i), rv, nll, upper, uniform, temperature)
    return rv, nll


def build_sample_row(m, export, row_graph_path, body_path, out_path, B, C, w, d):
    """export(module, args, path, inputs, outputs) is the project's torch.onnx.export wrapper."""
    it = torch.tensor(0, dtype=torch.int64)
    export(RowIteration(m), (it, torch.zeros(B, C, w, dtype=torch.int32), torch.zeros(B, C, w), torch.zeros(B, d, w),
                             torch.rand(B, w, C), torch.ones(B)),
           body_path, ["iter", "row_in", "nll_in", "upper", "uniform", "temperature"], ["row_out", "nll_out"])
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
                helper.make_tensor_value_info(pre + "row_in", TensorProto.INT32, None),
                helper.make_tensor_value_info(pre + "nll_in", TensorProto.FLOAT, None)],
        outputs=[helper.make_tensor_value_info(pre + "cond_out", TensorProto.BOOL, []),
                 helper.make_tensor_value_info(pre + "row_out", TensorProto.INT32, None),
                 helper.make_tensor_value_info(pre + "nll_out", TensorProto.FLOAT, None)],
        initializer=inits)

    # outer graph: decoder_row's nodes produce `upper`; add the loop after them
    del g.output[:]
    g.input.extend([helper.make_tensor_value_info("uniform", TensorProto.FLOAT, ["batch", w, C]),
                    helper.make_tensor_value_info("temperature", TensorProto.FLOAT, ["batch"])])
    g.initializer.extend([
        helper.make_tensor("row_loop/trips", TensorProto.INT64, [], [w * C]),
        helper.make_tensor("row_loop/true", TensorProto.BOOL, [], [True]),
        helper.make_tensor("row_loop/tail", TensorProto.INT64, [2], [C, w]),
        helper.make_tensor("row_loop/zero_idx", TensorProto.INT64, [1], [0]),
    ])
    g.node.extend([
        helper.make_node("Shape", ["upper"], ["row_loop/upper_shape"]),
        helper.make_node("Gather", ["row_loop/upper_shape", "row_loop/zero_idx"], ["row_loop/batch"], axis=0),
        helper.make_node("Concat", ["row_loop/batch", "row_loop/tail"], ["row_loop/shape"], axis=0),
        helper.make_node("ConstantOfShape", ["row_loop/shape"], ["row_loop/row0"],
                         value=helper.make_tensor("v", TensorProto.INT32, [1], [0])),
        helper.make_node("ConstantOfShape", ["row_loop/shape"], ["row_loop/nll0"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("Loop", ["row_loop/trips", "row_loop/true", "row_loop/row0", "row_loop/nll0"],
                         ["row_values", "nll"], body=body_graph, name="row_loop"),
    ])
    g.output.extend([helper.make_tensor_value_info("row_values", TensorProto.INT32, ["batch", C, w]),
                     helper.make_tensor_value_info("nll", TensorProto.FLOAT, ["batch", C, w])])
    g.name = "sample_row"
    onnx.checker.check_model(outer)
    onnx.save(outer, out_path)
