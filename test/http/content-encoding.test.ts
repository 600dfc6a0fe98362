// Compressed request bodies (Content-Encoding): gzip and deflate are inflated before parsing, as
// Triton's HTTP client sends them (request_compression_algorithm); BODY_LIMIT holds the inflated
// bytes; other encodings, compressed multipart forms and bytes that do not inflate are refused.
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import t from 'tap';
import { multipart, rawToPng, readyApp } from './helpers.js';

t.test('gzip and deflate bodies are inflated; the rest is refused, said why', async (t) => {
  const app = await readyApp({ BODY_LIMIT: 65536 });
  t.teardown(() => app.close());
  const post = (url: string, payload: Buffer, headers: Record<string, string>) => app.inject({ method: 'POST', url, payload, headers });
  const JSON_TYPE = { 'content-type': 'application/json' };
  const body = Buffer.from(JSON.stringify({ seed: 3, count: 1 }));
  const plain = await post('/sample', body, JSON_TYPE);
  t.equal(plain.statusCode, 200);
  for (const [encoding, bytes] of [['gzip', gzipSync(body)], ['deflate', deflateSync(body)], ['GZip', gzipSync(body)]] as const) {
    const res = await post('/sample', bytes, { ...JSON_TYPE, 'content-encoding': encoding });
    t.equal(res.statusCode, 200, encoding);
    t.same(res.json().images, plain.json().images, `${encoding}: the same sample as the plain body`);
  }

  const png = await rawToPng(Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 5) % 256), 28, 28, 1);
  const scored = (await post('/likelihood', png, { 'content-type': 'image/png' })).json().bitsPerDim;
  const gzPng = await post('/likelihood', gzipSync(png), { 'content-type': 'image/png', 'content-encoding': 'gzip' });
  t.equal(gzPng.statusCode, 200);
  t.equal(gzPng.json().bitsPerDim, scored, 'an image body, gzipped: the same score');
  const infer = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1, 28, 28, 1], datatype: 'UINT8', data: Array(784).fill(7) }] }));
  const plainInfer = await post('/v2/models/tiny-c1/infer', infer, {});
  const gzInfer = await post('/v2/models/tiny-c1/infer', gzipSync(infer), { 'content-encoding': 'gzip' });
  t.equal(gzInfer.statusCode, 200, 'an Open Inference Protocol request, as Triton\'s client compresses it');
  t.same(gzInfer.json().outputs, plainInfer.json().outputs);

  const refusals: [string, Buffer, Record<string, string>, number, object][] = [
    ['brotli', brotliCompressSync(body), { ...JSON_TYPE, 'content-encoding': 'br' }, 415,
      { error: 'Content-Encoding br is not supported: send the body as it is, or with gzip or deflate', error_type: 'unsupported_media_type' }],
    ['not gzip at all', body, { ...JSON_TYPE, 'content-encoding': 'gzip' }, 400,
      { error: 'the body is not valid gzip data: incorrect header check', error_type: 'bad_request' }],
    ['10 MB of spaces in 10 KB of gzip (BODY_LIMIT 64 KiB)', gzipSync(Buffer.alloc(10_000_000, 32)), { ...JSON_TYPE, 'content-encoding': 'gzip' }, 413,
      { error: 'Request body is too large', error_type: 'payload_too_large' }],
  ];
  for (const [what, payload, headers, status, answer] of refusals) {
    const res = await post('/sample', payload, headers);
    t.equal(res.statusCode, status, what);
    t.same(res.json(), answer, what);
  }
  const form = multipart({}, { name: 'image', type: 'image/png', bytes: png });
  const gzForm = await app.inject({ method: 'POST', url: '/likelihood', payload: gzipSync(form.payload), headers: { ...form.headers, 'content-encoding': 'gzip' } });
  t.equal(gzForm.statusCode, 415);
  t.same(gzForm.json(), { error: 'a multipart form cannot be compressed (Content-Encoding): send it as it is', error_type: 'unsupported_media_type' });
  const get = await app.inject({ method: 'GET', url: '/sample?seed=3', headers: { 'content-encoding': 'br' } });
  t.equal(get.statusCode, 200, 'a request without a body is not refused for the header');
});
