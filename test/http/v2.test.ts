// The Open Inference Protocol (v2) routes: server and model metadata, health, and inference with
// JSON tensors (flat and nested) and binary tensors (the binary tensor data extension, as Triton's
// client sends them), scoring exactly as /likelihood/batch does; refusals named by field; API keys.
import http from 'node:http';
import t from 'tap';
import { listening, metricValue, rawToPng, readyApp } from './helpers.js';

const H = 28;
const W = 28;

/** Two deterministic grey images, and the same as one flat UINT8 tensor [2, 28, 28, 1]. */
function images(): { raw: Uint8Array[]; flat: number[] } {
  const raw = [0, 1].map((k) => Uint8Array.from({ length: H * W }, (_, i) => (i * (7 + k * 6) + k * 50) % 256));
  return { raw, flat: raw.flatMap((r) => [...r]) };
}

/** A v2 body with binary tensors: the JSON header, then the bytes; and its header length. */
function binaryBody(header: object, ...blobs: Uint8Array[]): { payload: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return { payload: Buffer.concat([json, ...blobs.map((b) => Buffer.from(b))]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) } };
}

t.test('metadata and health', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const server = (await app.inject({ method: 'GET', url: '/v2' })).json() as { name: string; version: string; extensions: string[] };
  t.match(server, { name: 'spn-serve', version: /^\d+\.\d+\.\d+$/, extensions: ['binary_tensor_data'] });
  t.same((await app.inject({ method: 'GET', url: '/v2/health/live' })).json(), { live: true });
  const ready = await app.inject({ method: 'GET', url: '/v2/health/ready' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { ready: true });

  const summary = (await app.inject({ method: 'GET', url: '/models/tiny-c3' })).json() as { version: string; stages: unknown[] };
  const meta = await app.inject({ method: 'GET', url: '/v2/models/tiny-c3' });
  t.equal(meta.statusCode, 200);
  t.same(meta.json(), {
    name: 'tiny-c3', versions: [summary.version], platform: 'onnxruntime_onnx',
    inputs: [{ name: 'image', datatype: 'UINT8', shape: [-1, H, W, 3] }],
    outputs: [
      { name: 'bits_per_dim', datatype: 'FP64', shape: [-1] },
      { name: 'nats', datatype: 'FP64', shape: [-1] },
      { name: 'stage_bits_per_dim', datatype: 'FP64', shape: [-1, summary.stages.length] },
    ],
  });
  t.same((await app.inject({ method: 'GET', url: `/v2/models/tiny-c3/versions/${summary.version}` })).json(), meta.json(), 'at its version');
  const wrong = await app.inject({ method: 'GET', url: '/v2/models/tiny-c3/versions/0' });
  t.equal(wrong.statusCode, 404);
  t.same(wrong.json(), { error: `model 'tiny-c3' has no version '0' (the loaded one is '${summary.version}')`, error_type: 'unknown_model' });
  t.same((await app.inject({ method: 'GET', url: '/v2/models/tiny-c3/ready' })).json(), { name: 'tiny-c3', ready: true });
  t.equal((await app.inject({ method: 'GET', url: '/v2/models/nope' })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/v2/models/nope/ready' })).statusCode, 404);
  // a name or version longer than the schema allows: 400 in the error shape on every model route
  // (the ready routes' 400 is also their 'not ready' answer; an error used to fail its serialization: 500)
  const long = 'a'.repeat(70);
  for (const url of [`/v2/models/${long}`, `/v2/models/${long}/ready`, `/v2/models/tiny-c3/versions/${long}/ready`]) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 400, url);
    t.match(res.json(), { error: /^params\/(name|version) must NOT have more than \d+ characters$/, error_type: 'validation' }, url);
  }
});

t.test('infer: the scores of /likelihood/batch, from JSON and binary tensors', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const { raw, flat } = images();
  const pngs = await Promise.all(raw.map(async (r) => (await rawToPng(r, W, H, 1)).toString('base64')));
  const batch = (await app.inject({ method: 'POST', url: '/likelihood/batch', payload: { model: 'tiny-c1', images: pngs } })).json() as {
    results: Array<{ bitsPerDim: number; nats: number; stages: Array<{ bitsPerDim: number }> }>;
  };
  const version = ((await app.inject({ method: 'GET', url: '/models/tiny-c1' })).json() as { version: string }).version;
  const expected = {
    bits_per_dim: batch.results.map((r) => r.bitsPerDim),
    nats: batch.results.map((r) => r.nats),
    stage_bits_per_dim: batch.results.flatMap((r) => r.stages.map((s) => s.bitsPerDim)),
  };
  const stages = batch.results[0].stages.length;
  type Out = { name: string; datatype: string; shape: number[]; data?: number[]; parameters?: { binary_data_size: number } };
  const check = (outputs: Out[], what: string) => {
    t.same(outputs.map((o) => [o.name, o.datatype, o.shape]), [['bits_per_dim', 'FP64', [2]], ['nats', 'FP64', [2]], ['stage_bits_per_dim', 'FP64', [2, stages]]], `${what}: names, types, shapes`);
    for (const o of outputs) {
      const want = expected[o.name as keyof typeof expected];
      if (o.data) t.equal(o.data.length, want.length, `${what}: ${o.name} holds its shape's ${want.length} values`);
      o.data!.forEach((v, i) => t.ok(Math.abs(v - want[i]) <= 1e-9, `${what}: ${o.name}[${i}] ${v} = ${want[i]}`));
    }
  };

  const input = { name: 'image', shape: [2, H, W, 1], datatype: 'UINT8' };
  const json = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', payload: { id: 'req-1', inputs: [{ ...input, data: flat }] } });
  t.equal(json.statusCode, 200);
  t.equal(json.headers['content-type'], 'application/json; charset=utf-8');
  const body = json.json() as { model_name: string; model_version: string; id: string; outputs: Out[] };
  t.match(body, { model_name: 'tiny-c1', model_version: version, id: 'req-1' });
  check(body.outputs, 'flat JSON');

  const nested = raw.map((r) => Array.from({ length: H }, (_, y) => Array.from({ length: W }, (_, x) => [r[y * W + x]])));
  const fromNested = await app.inject({ method: 'POST', url: `/v2/models/tiny-c1/versions/${version}/infer`, payload: { inputs: [{ ...input, data: nested }] } });
  check((fromNested.json() as { outputs: Out[] }).outputs, 'nested JSON, versioned path');
  t.notOk('id' in (fromNested.json() as object), 'no id asked, none echoed');
  const perImage = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', payload: { inputs: [{ ...input, data: raw.map((r) => [...r]) }] } });
  check((perImage.json() as { outputs: Out[] }).outputs, 'nested per image only ([batch][H*W*C])');

  // binary in, binary out (binary_data_output), as Triton's client does with numpy arrays
  const bin = binaryBody({ inputs: [{ ...input, parameters: { binary_data_size: 2 * H * W } }], parameters: { binary_data_output: true } }, ...raw);
  const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', ...bin });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'application/octet-stream');
  const n = Number(res.headers['inference-header-content-length']);
  const head = JSON.parse(res.rawPayload.subarray(0, n).toString()) as { outputs: Out[] };
  let at = n;
  for (const o of head.outputs) {
    t.notOk(o.data, `${o.name}: no JSON data`);
    const size = o.parameters!.binary_data_size;
    t.equal(size, o.shape.reduce((a, b) => a * b, 1) * 8);
    o.data = Array.from({ length: size / 8 }, (_, i) => res.rawPayload.readDoubleLE(at + i * 8));
    at += size;
  }
  t.equal(at, res.rawPayload.length, 'the body is the header and the outputs, nothing else');
  check(head.outputs, 'binary');

  // the same with no Content-Type at all, as Triton's Python client and requests.post(data=...) send
  // it (over a real socket: inject would add one), and a JSON request with none
  const { app: live, url } = await listening();
  t.teardown(() => live.close());
  const noType = await new Promise<{ status: number; header: number; body: Buffer }>((resolve, reject) => {
    const req = http.request(`${url}/v2/models/tiny-c1/infer`, { method: 'POST', headers: { 'inference-header-content-length': bin.headers['inference-header-content-length'], 'content-length': String(bin.payload.length) } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode!, header: Number(r.headers['inference-header-content-length']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    t.notOk(req.getHeader('content-type'), 'the request has no Content-Type');
    req.end(bin.payload);
  });
  t.equal(noType.status, 200, 'binary tensors with no Content-Type: 200');
  t.same(noType.body, res.rawPayload, 'the same answer, byte for byte');
  const jsonNoType = await fetch(`${url}/v2/models/tiny-c1/infer`, { method: 'POST', body: new Blob([JSON.stringify({ inputs: [{ ...input, data: flat }] })]) });
  t.equal(jsonNoType.status, 200, 'a JSON request with no Content-Type: 200');
  check((await jsonNoType.json() as { outputs: Out[] }).outputs, 'JSON, no Content-Type');
  for (const type of ['foo', ';', 'application/json; charset=utf-8', 'TEXT/PLAIN']) {
    const r = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'content-type': type }, payload: JSON.stringify({ inputs: [{ ...input, data: flat }] }) });
    t.equal(r.statusCode, 200, `Content-Type '${type}': read as the protocol reads it (it was 415 for the first two)`);
  }

  // some outputs, one binary, one JSON
  const some = binaryBody({ inputs: [{ ...input, parameters: { binary_data_size: 2 * H * W } }], outputs: [{ name: 'nats' }, { name: 'bits_per_dim', parameters: { binary_data: true } }] }, ...raw);
  const picked = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', ...some });
  const m = Number(picked.headers['inference-header-content-length']);
  const pickedHead = JSON.parse(picked.rawPayload.subarray(0, m).toString()) as { outputs: Out[] };
  t.same(pickedHead.outputs.map((o) => o.name), ['nats', 'bits_per_dim'], 'the outputs asked for, in order');
  t.same(pickedHead.outputs[0].data, expected.nats);
  t.same([picked.rawPayload.readDoubleLE(m), picked.rawPayload.readDoubleLE(m + 8)], expected.bits_per_dim);

  // outputs: [] asks for none in particular: all of them, as Triton answers (it was a 400)
  const none = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', payload: { inputs: [{ ...input, data: flat }], outputs: [] } });
  t.equal(none.statusCode, 200, 'outputs: [] is 200');
  check((none.json() as { outputs: Out[] }).outputs, 'outputs: [], every output');
});

t.test('infer refuses what it cannot score, naming the field', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const ok = { name: 'image', shape: [1, H, W, 1], datatype: 'UINT8', data: new Array(H * W).fill(3) };
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['no inputs', {}, 400, /^inputs: one input named 'image'/],
    ['another input name', { inputs: [{ ...ok, name: 'x' }] }, 400, /^inputs\/0\/name is "x"/],
    ['FP32', { inputs: [{ ...ok, datatype: 'FP32' }] }, 400, /^inputs\/0\/datatype is "FP32"/],
    ['a 3-D shape', { inputs: [{ ...ok, shape: [H, W, 1] }] }, 400, /^inputs\/0\/shape must be \[batch, 28, 28, 1\]/],
    ['another size', { inputs: [{ ...ok, shape: [1, 14, 14, 1] }] }, 422, /model 'tiny-c1' takes \[batch, 28, 28, 1\]/],
    ['65 images', { inputs: [{ ...ok, shape: [65, H, W, 1], data: [] }] }, 400, /at most 64 images/],
    ['too few values', { inputs: [{ ...ok, data: [1, 2, 3] }] }, 400, /^inputs\/0\/data has 3 values; \[1, 28, 28, 1\] is 784/],
    ['a value over 255', { inputs: [{ ...ok, data: [...ok.data.slice(1), 256] }] }, 400, /value 783 is 256, not a UINT8/],
    ['a string value', { inputs: [{ ...ok, data: ['1', ...ok.data.slice(1)] }] }, 400, /value 0 is "1"/],
    ['no data', { inputs: [{ ...ok, data: undefined }] }, 400, /inputs\/0\/data must be an array/],
    ['nested deeper than the shape', { inputs: [{ ...ok, data: [[[[[3]]]]] }] }, 400, /^inputs\/0\/data is nested deeper than the tensor's 4 dimensions/],
    // nested data must be rectangular and fit the shape (a ragged nesting with the right count was scored)
    ['ragged: 783 values and 1', { inputs: [{ ...ok, data: [Array(783).fill(1), [1]] }] }, 400, /^inputs\/0\/data: its lists at depth 1 differ in length \(783 and 1\); a nested tensor is rectangular$/],
    ['numbers and lists at one depth', { inputs: [{ ...ok, data: [...Array(783).fill(1), [1]] }] }, 400, /^inputs\/0\/data mixes numbers and lists at depth 0$/],
    ['an empty list beside the values', { inputs: [{ ...ok, data: [[[[]]], Array(784).fill(1)] }] }, 400, /^inputs\/0\/data/],
    ['nested as [28][28] for [1, 28, 28, 1]', { inputs: [{ ...ok, data: Array.from({ length: 28 }, () => Array(28).fill(1)) }] }, 400,
      /^inputs\/0\/data is nested as \[28\]\[28\], which does not fit the shape \[1, 28, 28, 1\] \(nest it as \[1\]\[784\], or send it flat\)$/],
    ['an unknown output', { inputs: [ok], outputs: [{ name: 'logits' }] }, 400, /^outputs\/0\/name is "logits": the outputs are bits_per_dim, nats, stage_bits_per_dim/],
    ['outputs an object', { inputs: [ok], outputs: { name: 'nats' } }, 400, /^outputs is \{"name":"nats"\}: it must be an array$/],
    ['a numeric id', { id: 7, inputs: [ok] }, 400, /^id must be a string/],
    ['parameters an array', { inputs: [ok], parameters: [] }, 400, /^parameters is \[\]: it must be an object/],
    ['parameters null', { inputs: [ok], parameters: null }, 400, /^parameters is null: it must be an object/],
    ['binary_data_output a string', { inputs: [ok], parameters: { binary_data_output: 'yes' } }, 400, /^parameters\/binary_data_output is "yes": it must be true or false/],
    ['an output\'s binary_data a number', { inputs: [ok], outputs: [{ name: 'nats', parameters: { binary_data: 1 } }] }, 400, /^outputs\/0\/parameters\/binary_data is 1: it must be true or false/],
    ['an output\'s parameters a string', { inputs: [ok], outputs: [{ name: 'nats', parameters: 'binary' }] }, 400, /^outputs\/0\/parameters is "binary": it must be an object/],
    ['an input\'s parameters a number', { inputs: [{ ...ok, parameters: 5 }] }, 400, /^inputs\/0\/parameters is 5: it must be an object/],
  ];
  for (const [what, payload, status, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', payload: payload as object });
    t.equal(res.statusCode, status, `${what}: ${status}`);
    t.match((res.json() as { error: string }).error, message, `${what}: says why`);
  }
  // a million nested brackets (4 MB): refused, not a blown stack (found by hand: it was a 500)
  const deep = `{"inputs":[{"name":"image","shape":[1,28,28,1],"datatype":"UINT8","data":${'['.repeat(1e6)}${']'.repeat(1e6)}}]}`;
  const deepRes = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'content-type': 'application/json' }, payload: deep });
  t.equal(deepRes.statusCode, 400, 'a million nested brackets: 400');
  t.match(deepRes.json(), { error: /nested deeper than the tensor's 4 dimensions/ });
  const notJson = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'content-type': 'application/json' }, payload: '{"inputs": [' });
  t.equal(notJson.statusCode, 400);
  t.match(notJson.json(), { error: /not valid JSON/, error_type: 'bad_request' });
  // the header-length header and no body at all (so no Content-Type either): was a 500
  const noBody = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'inference-header-content-length': '2' } });
  t.equal(noBody.statusCode, 400, 'no body: 400');
  t.match(noBody.json(), { error: /^the inference request has no body/, error_type: 'bad_request' });
  const noHeader = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(10) });
  t.match(noHeader.json(), { error: /needs the inference-header-content-length header/ });
  const over = binaryBody({ inputs: [{ ...ok, data: undefined }] }, Buffer.alloc(4));
  over.headers['inference-header-content-length'] = '100000';
  t.match((await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', ...over })).json(), { error: /must be the JSON header's length/ });
  const short = binaryBody({ inputs: [{ ...ok, data: undefined, parameters: { binary_data_size: H * W } }] }, Buffer.alloc(100));
  t.match((await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', ...short })).json(), { error: /the body has 100 bytes after the JSON header; binary_data_size says 784/ });
  const asText = binaryBody({ inputs: [{ ...ok, data: undefined, parameters: { binary_data_size: String(H * W) } }] }, Buffer.alloc(H * W));
  t.same((await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', ...asText })).json(),
    { error: 'inputs/0/parameters/binary_data_size must be an integer (a number of bytes), not "784"', error_type: 'bad_request' }, 'a size as a string is said to be one');
  const unclaimed = binaryBody({ inputs: [ok] }, Buffer.alloc(5));
  t.match((await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', ...unclaimed })).json(), { error: /5 bytes after the JSON header that no input claims/ });
  const colour = await app.inject({ method: 'POST', url: '/v2/models/tiny-c3/infer', payload: { inputs: [ok] } });
  t.equal(colour.statusCode, 422, 'a grey tensor for the colour model');
  t.equal((await app.inject({ method: 'POST', url: '/v2/models/nope/infer', payload: { inputs: [ok] } })).statusCode, 404);
  const csv = await app.inject({ method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'content-type': 'text/csv' }, payload: 'a,b' });
  t.equal(csv.statusCode, 400, 'any Content-Type is read as the protocol reads it: here, not JSON');
  t.match(csv.json(), { error: /^the inference request is not valid JSON/ });
  // every refusal above is counted once, as bad input of the infer route (cases, deep, not JSON,
  // no body, no header, over, short, a size as text, unclaimed, colour, unknown model, content type)
  const text = (await app.inject('/metrics')).body;
  t.equal(metricValue(text, 'spn_request_failures_total', { route: '/v2/models/:name/infer', reason: 'bad_input' }), cases.length + 11, 'refusals counted as bad input');
  t.equal(metricValue(text, 'spn_request_failures_total', { route: '/v2/models/:name/infer', reason: 'internal' }), 0);
});

t.test('over HTTP with API_KEYS: health open, the model routes need a key', async (t) => {
  const key = 'v2-test-key-0123456789';
  const { app, url } = await listening({ API_KEYS: key });
  t.teardown(() => app.close());
  for (const path of ['/v2', '/v2/health/live', '/v2/health/ready']) t.equal((await fetch(`${url}${path}`)).status, 200, `${path} is open`);
  for (const path of ['/v2/models/tiny-c1', '/v2/models/tiny-c1/ready']) t.equal((await fetch(`${url}${path}`)).status, 401, `${path} needs a key`);
  const body = JSON.stringify({ inputs: [{ name: 'image', shape: [1, H, W, 1], datatype: 'UINT8', data: new Array(H * W).fill(0) }] });
  t.equal((await fetch(`${url}/v2/models/tiny-c1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 401);
  const res = await fetch(`${url}/v2/models/tiny-c1/infer`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body });
  t.equal(res.status, 200);
  const out = (await res.json()) as { outputs: Array<{ name: string; data: number[] }> };
  t.ok(out.outputs[0].data[0] > 0, `an all-black image scores ${out.outputs[0].data[0]} bits/dim`);
});
