// POST /likelihood/batch through app.inject() against the real runtime (tiny models): each image
// scores what /likelihood gives it alone, in the request's order; the images share batched runs;
// one bad image refuses the request and is named; the server goes on serving. The same as a
// multipart form (one file part per image), also through a real listening server.
import http from 'node:http';
import t from 'tap';
import { execFile } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { decodePng, listening, metricValue, multipart, rawToPng, readyApp } from './helpers.js';

t.test('likelihood batch', async (t) => {
  const app: FastifyInstance = await readyApp({ BODY_LIMIT: 1024 * 1024 });
  t.teardown(() => app.close());
  const pngs: Buffer[] = [];
  for (const seed of [11, 12, 13, 14]) {
    const res = await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'image/png' }, payload: { seed } });
    pngs.push(res.rawPayload);
  }
  const single = async (png: Buffer): Promise<Scored> => (await app.inject({ method: 'POST', url: '/likelihood', headers: { 'content-type': 'image/png' }, payload: png })).json();
  type Scored = { bitsPerDim: number; stages: { bits: number }[] };
  const singles: Scored[] = [];
  for (const p of pngs) singles.push(await single(p));
  const batch = (payload: object) => app.inject({ method: 'POST', url: '/likelihood/batch', payload });
  const b64 = (b: Buffer) => b.toString('base64');

  t.test('each image scores what it scores alone, in the request\'s order, and the mean', async (t) => {
    const order = [2, 0, 3, 1];
    const res = await batch({ images: order.map((i) => b64(pngs[i])) });
    t.equal(res.statusCode, 200);
    const r = res.json();
    t.equal(r.model, 'tiny-c1');
    t.equal(r.count, 4);
    t.equal(r.results.length, 4);
    order.forEach((i, k) => {
      t.ok(Math.abs(r.results[k].bitsPerDim - singles[i].bitsPerDim) < 1e-9, `image ${k} (sample ${i}): ${r.results[k].bitsPerDim} vs ${singles[i].bitsPerDim} alone`);
      t.same(r.results[k].stages.map((s: { bits: number }) => s.bits.toFixed(6)), singles[i].stages.map((s: { bits: number }) => s.bits.toFixed(6)), `image ${k}: per stage`);
      t.same(r.results[k].input, { format: 'png', width: 28, height: 28, channels: 1, conversions: [] });
      t.equal(r.results[k].perPixel, undefined, 'no heat map unless asked');
    });
    const mean = order.reduce((a, i) => a + singles[i].bitsPerDim, 0) / 4;
    t.ok(Math.abs(r.bitsPerDim - mean) < 1e-9, 'bitsPerDim is the mean');
    t.ok(r.timings.totalMs >= r.timings.queueMs);
  });

  t.test('the images share batched runs: a batch of 4 makes the runs of one image', async (t) => {
    const runs = async () => {
      const text = (await app.inject({ url: '/metrics' })).body;
      return ['small', 'size', 'depth'].map((stage) =>
        (metricValue(text, 'spn_onnx_run_seconds_count', { model: 'tiny-c1', stage, graph: 'score' }) ?? 0)
        + (metricValue(text, 'spn_onnx_run_seconds_count', { model: 'tiny-c1', stage, graph: 'score_context' }) ?? 0));
    };
    const scored = async () => metricValue((await app.inject({ url: '/metrics' })).body, 'spn_images_scored_total', { model: 'tiny-c1' }) ?? 0;
    const r0 = await runs();
    const s0 = await scored();
    await single(pngs[0]);
    const r1 = await runs();
    t.equal((await batch({ images: pngs.map(b64) })).statusCode, 200);
    const r2 = await runs();
    const one = r1.map((x, i) => x - r0[i]);
    t.ok(one.every((n) => n > 0), `one image runs the scoring graphs of every stage, counted (${one.join(', ')})`);
    t.same(r2.map((x, i) => x - r1[i]), one, `runs per stage for 4 images: the same as for one (${one.join(', ')})`);
    t.equal((await scored()) - s0, 5, 'every image is counted as scored');
  });

  t.test('per-pixel heat maps, conversions and options apply to each image', async (t) => {
    const grey = (await decodePng(pngs[0])).data;
    const rgb = await rawToPng(Uint8Array.from({ length: grey.length * 3 }, (_, i) => grey[Math.floor(i / 3)]), 28, 28, 3);
    const res = await batch({ images: [b64(pngs[1]), b64(rgb)], perPixel: true, convert: { grayscale: true } });
    t.equal(res.statusCode, 200);
    const r = res.json();
    for (const one of r.results) {
      const map = await decodePng(one.perPixel.png);
      t.equal(map.width, 28);
      t.equal(map.height, 28);
      t.ok(one.perPixel.maxBits >= one.perPixel.minBits);
    }
    t.same(r.results[0].input.conversions, []);
    t.ok(r.results[1].input.conversions.length > 0, `the RGB image was converted: ${r.results[1].input.conversions}`);
    t.ok(Math.abs(r.results[1].bitsPerDim - singles[0].bitsPerDim) < 1e-9, 'grey again, it scores as the original');
  });

  t.test('refusals name the image; the server goes on serving', async (t) => {
    const cases: [string, object, number, object][] = [
      ['no images', { images: [] }, 400, { error: 'body/images must NOT have fewer than 1 items', error_type: 'validation' }],
      ['65 images', { images: Array.from({ length: 65 }, () => b64(pngs[0])) }, 400, { error: 'body/images must NOT have more than 64 items', error_type: 'validation' }],
      ['not an image', { images: [b64(pngs[0]), 'AAAA'] }, 400, { error: 'body/images/1: the data is not a PNG, JPEG or WebP image', error_type: 'bad_image' }],
      ['not base64', { images: [b64(pngs[0]), b64(pngs[1]), '!!!'] }, 400, { error: 'body/images/2 is not base64', error_type: 'bad_request' }],
      ['unknown model', { images: [b64(pngs[0])], model: 'nope' }, 404, { error: "unknown model 'nope'", error_type: 'unknown_model' }],
      ['unknown field', { images: [b64(pngs[0])], extra: 1 }, 400, { error: 'body/extra is not allowed', error_type: 'validation' }],
    ];
    for (const [what, payload, status, body] of cases) {
      const res = await batch(payload);
      t.equal(res.statusCode, status, what);
      t.same(res.json(), body, what);
    }
    const small = await rawToPng(new Uint8Array(14 * 14), 14, 14, 1);
    const mismatch = await batch({ images: [b64(pngs[0]), b64(small)] });
    t.equal(mismatch.statusCode, 422);
    t.same(mismatch.json(), {
      error: "body/images/1: the image does not fit model 'tiny-c1': it is 14x14 but the model takes 28x28 (send such an image, or ask for convert.resize)",
      error_type: 'image_mismatch',
    }, 'it names the JSON option (the batch takes no query: it named ?resize=true, which is refused)');
    const formMismatch = await app.inject({ method: 'POST', url: '/likelihood/batch', ...multipart({}, { name: 'images', type: 'image/png', bytes: small }) });
    t.equal(formMismatch.statusCode, 422);
    t.match(formMismatch.json(), { error: /\(send such an image, or ask for the form field resize=true\)$/ }, 'a form names its field');
    const oneForm = await app.inject({ method: 'POST', url: '/likelihood', ...multipart({}, { name: 'image', type: 'image/png', bytes: small }) });
    t.match(oneForm.json(), { error: /\(send such an image, or ask for resize=true \(a form field, or the query\)\)$/ }, '/likelihood\'s form too');
    const raw = await app.inject({ method: 'POST', url: '/likelihood/batch', headers: { 'content-type': 'image/png' }, payload: pngs[0] });
    t.equal(raw.statusCode, 415, 'a raw image body goes to /likelihood');
    // options in the query string, as /likelihood takes them: refused, not ignored (it scored with the default model)
    const query = await app.inject({ method: 'POST', url: '/likelihood/batch?model=tiny-c3&perPixel=true', payload: { images: [b64(pngs[0])] } });
    t.equal(query.statusCode, 400);
    t.same(query.json(), { error: 'querystring/model is not allowed', error_type: 'validation' });
    // an image far from the model's shape, with resize: refused by its place, not a 500
    const sliver = b64(await rawToPng(new Uint8Array(200_000), 200_000, 1, 1));
    const thin = await batch({ images: [b64(pngs[0]), sliver], convert: { resize: true } });
    t.equal(thin.statusCode, 422);
    t.match(thin.json(), { error: /^body\/images\/1: the image is 200000x1: scaled to cover 28x28 it would be 5600000x28/, error_type: 'image_mismatch' });
    t.equal((await batch({ images: [b64(pngs[3])] })).json().results[0].bitsPerDim, singles[3].bitsPerDim, 'still serving');
  });

  t.test('a multipart form: one file part per image, in order, options as fields', async (t) => {
    const files = (order: number[]) => order.map((i) => ({ name: 'images', type: 'image/png', bytes: pngs[i] }));
    const form = (fields: Record<string, string>, ...f: ReturnType<typeof files>) => app.inject({ method: 'POST', url: '/likelihood/batch', ...multipart(fields, ...f) });
    const order = [3, 1, 2];
    const res = await form({ model: 'tiny-c1', perPixel: 'true', timeoutMs: '60000' }, ...files(order));
    t.equal(res.statusCode, 200);
    const r = res.json();
    t.equal(r.count, 3);
    order.forEach((i, k) => t.ok(Math.abs(r.results[k].bitsPerDim - singles[i].bitsPerDim) < 1e-9, `part ${k} (sample ${i}) scores as alone`));
    t.ok(r.results.every((one: { perPixel?: object }) => one.perPixel), 'perPixel read from its field');
    const mean = order.reduce((a, i) => a + singles[i].bitsPerDim, 0) / 3;
    t.ok(Math.abs(r.bitsPerDim - mean) < 1e-9);

    const one = await form({}, ...files([0]));
    t.equal(one.statusCode, 200, 'a single file part is a batch of one');
    t.equal(one.json().count, 1);
    t.equal(one.json().results[0].bitsPerDim, singles[0].bitsPerDim);

    const cases: [string, Awaited<ReturnType<typeof form>>, number, object | RegExp][] = [
      ['no file part', await form({ model: 'tiny-c1' }), 400, { error: 'body/images is required', error_type: 'validation' }],
      ['a text field named images', await form({ images: 'abc' }), 400, { error: 'body/images/0 must be a file upload', error_type: 'bad_request' }],
      ['a part that is not an image', await form({}, ...files([0]), { name: 'images', type: 'image/png', bytes: Buffer.from('nope') }), 400,
        { error: 'body/images/1: the data is not a PNG, JPEG or WebP image', error_type: 'bad_image' }],
      ['65 file parts (a small body: too many parts, not too many bytes)', await form({}, ...files(Array.from({ length: 65 }, () => 0))), 400,
        { error: 'too many parts in the multipart form: it takes 1 to 64 file parts named images and at most 8 option fields', error_type: 'bad_request' }],
      ['9 option fields', await form(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`f${i}`, 'x'])), ...files([0])), 400,
        { error: /^too many parts in the multipart form/, error_type: 'bad_request' }],
      ['an unknown model', await form({ model: 'nope' }, ...files([0])), 404, { error: "unknown model 'nope'", error_type: 'unknown_model' }],
      ['an unknown field (a typo)', await form({ perpixel: 'true' }, ...files([0])), 400, { error: 'body/perpixel is not allowed', error_type: 'validation' }],
    ];
    for (const [what, r2, status, body] of cases) {
      t.equal(r2.statusCode, status, what);
      t.match(r2.json(), body, what);
    }
    // 64 parts fit; its Content-Length is what is held to BODY_LIMIT
    const full = await form({}, ...files(Array.from({ length: 64 }, (_, i) => i % 4)));
    t.equal(full.statusCode, 200, '64 file parts');
    t.equal(full.json().count, 64);
  });
});

t.test('multipart batches on a real server: fetch and FormData; a body over BODY_LIMIT or without a Content-Length is refused before it is read', async (t) => {
  const { app, url } = await listening({ BODY_LIMIT: 64 * 1024 });
  t.teardown(() => app.close());
  const png = (await (await fetch(`${url}/sample`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'image/png' }, body: JSON.stringify({ seed: 21 }) })).arrayBuffer());
  const fd = new FormData();
  fd.append('images', new Blob([png], { type: 'image/png' }), 'a.png');
  fd.append('images', new Blob([png], { type: 'image/png' }), 'b.png');
  fd.append('perPixel', 'false');
  const res = await fetch(`${url}/likelihood/batch`, { method: 'POST', body: fd });
  t.equal(res.status, 200);
  const r = await res.json() as { count: number; results: { bitsPerDim: number }[] };
  t.equal(r.count, 2);
  t.equal(r.results[0].bitsPerDim, r.results[1].bitsPerDim, 'the same image twice, the same score');

  // many parts, each under BODY_LIMIT, together over it: refused by the Content-Length, before the
  // body is read. fetch is still sending it when the answer comes, and must get that answer: a
  // connection closed with the body unread was reset, and fetch failed with EPIPE for most such
  // uploads (on Node 20 and 26). The client runs in its own process, as clients do (in this one it
  // shared the server's event loop, and read the answer before the reset came).
  const client = `
    const big = new FormData();
    for (let i = 0; i < 40; i++) big.append('images', new Blob([Buffer.alloc(2048 + 1024 * (i % 3))], { type: 'image/png' }), 'p' + i + '.png');
    const answers = [];
    for (let i = 0; i < 12; i++) {
      answers.push(await fetch(process.argv[1], { method: 'POST', body: big })
        .then(async (r) => (await r.json()).error_type === 'payload_too_large' ? r.status : r.status + ' ' + r.statusText, (err) => err.cause?.code ?? err.message));
    }
    console.log(JSON.stringify(answers));`;
  const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['--input-type=module', '-e', client, `${url}/likelihood/batch`],
    { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
  t.same(JSON.parse(out), Array(12).fill(413), 'every upload over the limit gets its 413');

  // a chunked upload has no Content-Length: its size cannot be bounded before reading it
  const { payload, headers } = multipart({}, { name: 'images', type: 'image/png', bytes: Buffer.from(png) });
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const u = new URL(`${url}/likelihood/batch`);
    const req = http.request({ method: 'POST', host: u.hostname, port: u.port, path: u.pathname, headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res2) => {
      let body = '';
      res2.on('data', (d) => { body += d; });
      res2.on('end', () => resolve({ status: res2.statusCode!, body }));
    });
    req.on('error', reject);
    req.write(payload.subarray(0, 100));
    req.end(payload.subarray(100));
  });
  t.equal(chunked.status, 411);
  t.same(JSON.parse(chunked.body), { error: 'a multipart batch upload needs a Content-Length', error_type: 'length_required' });
  t.equal((await fetch(`${url}/health/ready`)).status, 200, 'still ready');
});

