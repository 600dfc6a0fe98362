// scripts/spn/graph_pass.py: zero padding folded into the convolution after it. A small model with
// the decoder's one-sided pads (rows above, pixels to the left) is exported twice, with and
// without the pass; onnxruntime-node must give the same outputs for both, and the pass must
// leave no Pad feeding a Conv, in that model and in the shipped likelihood graphs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import t from 'tap';

const root = new URL('../../..', import.meta.url).pathname;
const python = process.env.PYTHON ?? '/usr/bin/python3';
const work = mkdtempSync(join(tmpdir(), 'spn-graph-pass-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const EXPORT = `
import json, sys, onnx, torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from spn.graph_pass import fold_pads_into_convs, pads_before_convs

class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.up = torch.nn.Conv2d(6, 6, (2, 3))
        self.row = torch.nn.Conv2d(6, 6, (1, 3))
    def forward(self, x):
        u = x + self.up(F.pad(F.relu(x), (1, 1, 1, 0)))     # rows r-1 and r, columns c-1..c+1
        return u + self.row(F.pad(F.relu(u), (2, 0)))        # columns c-2..c

plain, folded = sys.argv[2], sys.argv[3]
torch.onnx.export(M(), (torch.zeros(2, 6, 5, 7),), plain, input_names=["x"], output_names=["y"],
                  opset_version=17, dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
m = onnx.load(plain)
before = pads_before_convs(m)
n = fold_pads_into_convs(m)
onnx.checker.check_model(m)
onnx.save(m, folded)
print(json.dumps({"before": before, "folded": n, "after": pads_before_convs(m),
                  "pads_left": sum(1 for x in m.graph.node if x.op_type == "Pad")}))
`;

t.test('folding pads into convolutions changes no output', async (t) => {
  const plain = join(work, 'plain.onnx');
  const folded = join(work, 'folded.onnx');
  const report = JSON.parse(execFileSync(python, ['-c', EXPORT, join(root, 'scripts'), plain, folded],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }).trim().split('\n').pop()!);
  t.same(report, { before: 2, folded: 2, after: 0, pads_left: 0 }, 'both pads folded, none left');
  const x = new Float32Array(3 * 6 * 5 * 7).map((_, i) => Math.sin(i * 0.37) * 2);
  const out: Float32Array[] = [];
  for (const path of [plain, folded]) {
    const s = await ort.InferenceSession.create(path);
    const r = await s.run({ x: new ort.Tensor('float32', x, [3, 6, 5, 7]) });
    t.same(r.y.dims, [3, 6, 5, 7]);
    out.push(r.y.data as Float32Array);
    await s.release();
  }
  let maxDiff = 0;
  for (let i = 0; i < out[0].length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[0][i] - out[1][i]));
  t.ok(maxDiff <= 1e-6, `same outputs (max |diff| ${maxDiff})`);
  t.ok(out[0].some((v, i) => v !== x[i]), 'the convolutions did something');
});

t.test('the shipped likelihood graphs were exported through the pass', async (t) => {
  const graphs = ['mu-fmnist/small/score.onnx', 'mu-fmnist/small/score_context.onnx', 'mu-fmnist/size/score.onnx',
    'mu-fmnist/depth/score.onnx', 'spn8-fmnist/full/score.onnx', 'spn8-fmnist/full/score_context.onnx']
    .map((g) => join(root, 'models', g));
  const counts = JSON.parse(execFileSync(python, [join(root, 'scripts', 'spn', 'graph_pass.py'), ...graphs],
    { encoding: 'utf8', timeout: 120_000 }));
  for (const g of graphs) t.equal(counts[g], 0, `${g.slice(root.length)}: no Pad feeding a Conv`);
});
