// POST /sample through app.inject() against the real runtime: JSON, PNG and event-stream answers,
// seeds, stages, conditioning, and the 429 of a full queue.
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { decodeImage } from '../../src/http/decode-image.js';
import { decodePng, metricValue, parseSse, rawToPng, readyApp } from './helpers.js';

const post = (app: FastifyInstance, body: unknown, accept = 'application/json') =>
  app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json', accept }, payload: JSON.stringify(body) });

t.test('sampling', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());

  t.test('JSON: images, echoed seed, bits/dim, timings; same seed same images', async (t) => {
    const a = await post(app, { seed: 7, count: 2 });
    t.equal(a.statusCode, 200);
    const body = a.json();
    t.equal(body.model, 'tiny-c1');
    t.equal(body.seed, 7);
    t.equal(body.count, 2);
    t.equal(body.temperature, 1);
    t.equal(body.stoppedAfter, 'depth');
    t.equal(body.images.length, 2);
    for (const img of body.images) {
      const px = await decodePng(img.png);
      t.same([px.width, px.height, px.channels, px.format], [28, 28, 1, 'png']);
      t.ok(img.bitsPerDim > 0 && img.bitsPerDim < 8, `bits/dim ${img.bitsPerDim}`);
    }
    t.notSame(body.images[0].png, body.images[1].png, 'two samples differ');
    t.ok(body.timings.totalMs >= body.timings.firstSliceMs && body.timings.firstSliceMs >= body.timings.queueMs);
    const b = (await post(app, { seed: 7, count: 2 })).json();
    t.same(b.images, body.images, 'the same seed draws the same images');
    const c = (await post(app, { seed: 8, count: 2 })).json();
    t.notSame(c.images[0].png, body.images[0].png);
  });

  t.test('GET /sample: the options in the query string give what POST gives', async (t) => {
    const viaPost = await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'image/png' }, payload: { seed: 5, count: 2, temperature: 0.8 } });
    const viaGet = await app.inject({ method: 'GET', url: '/sample?seed=5&count=2&temperature=0.8', headers: { accept: 'image/png' } });
    t.equal(viaGet.statusCode, 200);
    t.ok(viaGet.rawPayload.equals(viaPost.rawPayload), 'the same PNG, byte for byte');
    t.equal(viaGet.headers['x-seed'], '5');
    const json = await app.inject({ method: 'GET', url: '/sample?seed=5&model=tiny-c3&stopAfter=size' });
    t.match(json.json(), { model: 'tiny-c3', seed: 5, count: 1, stoppedAfter: 'size' });
    const events = parseSse((await app.inject({ method: 'GET', url: '/sample?seed=5', headers: { accept: 'text/event-stream' } })).body);
    t.equal(events.at(-1)!.event, 'done');
    t.ok(events.some((e) => e.event === 'slice'));
    // a browser <img> asks for images with */* beside them: it gets the PNG
    const img = await app.inject({ method: 'GET', url: '/sample?seed=5&count=2&temperature=0.8', headers: { accept: 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8' } });
    t.equal(img.headers['content-type'], 'image/png');
    // a seeded PNG has an ETag; a client that sends it back gets 304 and the model does not run
    t.match(viaGet.headers, { etag: /^"[0-9a-f]{32}"$/, 'cache-control': 'no-cache', vary: /accept/i });
    const generated = async () => metricValue((await app.inject('/metrics')).body, 'spn_samples_generated_total', { model: 'tiny-c1' });
    const before = await generated();
    const cached = await app.inject({ method: 'GET', url: '/sample?seed=5&count=2&temperature=0.8', headers: { accept: 'image/png', 'if-none-match': `"x", ${viaGet.headers.etag}` } });
    t.equal(cached.statusCode, 304);
    t.equal(cached.rawPayload.length, 0);
    t.equal(cached.headers.etag, viaGet.headers.etag);
    t.equal(await generated(), before, 'no sample was drawn for the 304');
    const etagOf = async (q: string) => (await app.inject({ method: 'GET', url: `/sample?${q}`, headers: { accept: 'image/png' } })).headers.etag;
    t.equal(await etagOf('seed=5&count=2&temperature=0.8'), viaGet.headers.etag, 'the same options, the same ETag');
    t.not(await etagOf('seed=6&count=2&temperature=0.8'), viaGet.headers.etag, 'another seed, another ETag');
    t.not(await etagOf('seed=5&count=2&temperature=0.9'), viaGet.headers.etag, 'another temperature, another ETag');
    const stale = await app.inject({ method: 'GET', url: '/sample?seed=5&count=2&temperature=0.9', headers: { accept: 'image/png', 'if-none-match': viaGet.headers.etag as string } });
    t.equal(stale.statusCode, 200, 'an ETag of other options does not match');
    for (const [url, accept] of [['/sample', 'image/png'], ['/sample?seed=5', 'application/json']]) {
      const res = await app.inject({ method: 'GET', url, headers: { accept } });
      t.equal(res.headers['cache-control'], 'no-store', `${url} as ${accept}: not cacheable (unseeded, or timings in it)`);
      t.equal(res.headers.etag, undefined);
    }
    const stream = await app.inject({ method: 'GET', url: '/sample?seed=5', headers: { accept: 'text/event-stream' } });
    t.equal(stream.headers['cache-control'], 'no-cache, no-transform', 'a stream as streams are');
    t.equal(stream.headers.etag, undefined);
    t.equal(viaPost.headers.etag, undefined, 'POST answers carry no ETag');
    const version = (await app.inject('/models/tiny-c1')).json().version;
    t.match(version, /^[0-9a-f]{16}$/, 'the model\'s version, a digest of its graphs');

    const refusals: [string, string][] = [
      ['/sample?count=99', 'querystring/count must be <= 16'],
      ['/sample?seed=x', 'querystring/seed must be integer'],
      ['/sample?condition=abc', 'querystring/condition is not allowed'],
      // Ajv coerces these strings to non-finite numbers and then skips the bounds (http/finite.ts)
      ['/sample?temperature=Infinity', 'querystring/temperature must be a finite number'],
      ['/sample?temperature=1e999', 'querystring/temperature must be a finite number'],
      ['/sample?count=Infinity', 'querystring/count must be a finite number'],
      ['/sample?timeoutMs=Infinity', 'querystring/timeoutMs must be a finite number'],
      ['/sample?seed=-Infinity', 'querystring/seed must be a finite number'],
      // Ajv read text as `+text` does (found by probing: a blank seed sampled seed 0, with seed 0's ETag)
      ['/sample?seed=%20', 'querystring/seed must be an integer written in decimal'],
      ['/sample?seed=%09', 'querystring/seed must be an integer written in decimal'],
      ['/sample?seed=0x10', 'querystring/seed must be an integer written in decimal'],
      ['/sample?count=%205', 'querystring/count must be an integer written in decimal'],
      ['/sample?temperature=0b1', 'querystring/temperature must be a number written in decimal'],
    ];
    for (const [url, error] of refusals) {
      const res = await app.inject({ method: 'GET', url });
      t.equal(res.statusCode, 400, url);
      t.same(res.json(), { error, error_type: 'validation' }, url);
    }
    // a JSON body is validated as it is, without Ajv's type coercion (http/validators.ts): a string,
    // an array or null is not a number, and null is not 'absent' (it was seed 0)
    for (const [body, error] of [
      [{ temperature: 'Infinity' }, 'body/temperature must be number'],
      [{ temperature: '0.5' }, 'body/temperature must be number'],
      [{ count: '1e999' }, 'body/count must be integer'],
      [{ count: true }, 'body/count must be integer'],
      [{ count: null }, 'body/count must be integer'],
      [{ seed: null }, 'body/seed must be integer'],
      [{ seed: '7' }, 'body/seed must be integer'],
      [{ seed: [7] }, 'body/seed must be integer'],
      [{ model: ['tiny-c1'] }, 'body/model must be string'],
      [{ condition: { mode: 'complete', image: 'AAAA', slices: 'Infinity' } }, 'body/condition/slices must be integer'],
    ] as const) {
      const res = await post(app, body);
      t.equal(res.statusCode, 400, JSON.stringify(body));
      t.same(res.json(), { error, error_type: 'validation' }, JSON.stringify(body));
    }
    // bodies that do not parse, or carry a prototype: 400 saying which (both were 'Body is not valid JSON')
    for (const [payload, error] of [
      ['{"seed": 1,}', /^the body is not valid JSON: .*position 11/],
      ['{"__proto__": {"seed": 1}}', /^the body has a __proto__ key, or a constructor key holding a prototype: refused \(prototype poisoning\)$/],
      ['{"constructor": {"prototype": {"seed": 1}}}', /^the body has a __proto__ key/],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload });
      t.equal(res.statusCode, 400, payload);
      t.match(res.json(), { error, error_type: 'bad_request' }, payload);
    }
    // JSON's own way to a non-finite number: 1e999 parses as Infinity
    for (const payload of ['{"temperature": 1e999}', '{"count": 1e999}', '{"seed": -1e999}']) {
      const res = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload });
      t.equal(res.statusCode, 400, payload);
      t.match(res.json(), { error: /^body\/(temperature|count|seed) must be (a finite number|number|integer|>= 0)$/, error_type: 'validation' }, payload);
    }
    // POST takes its options in the body only: a query parameter is refused, not silently ignored
    const query = await app.inject({ method: 'POST', url: '/sample?seed=7', headers: { 'content-type': 'application/json' }, payload: '{}' });
    t.equal(query.statusCode, 400);
    t.same(query.json(), { error: 'querystring/seed is not allowed', error_type: 'validation' });

    // an error never carries a seeded PNG's ETag, and an invalid request is never 304
    for (const method of ['GET', 'HEAD'] as const) {
      const bad = await app.inject({ method, url: '/sample?seed=1&stopAfter=nope', headers: { accept: 'image/png', 'if-none-match': '*' } });
      t.equal(bad.statusCode, 422, `${method} of a stage the model lacks: 422, not 304`);
      t.equal(bad.headers.etag, undefined, `${method}: no ETag on the error`);
    }
    const late = await app.inject({ method: 'GET', url: '/sample?seed=1&count=16&timeoutMs=1', headers: { accept: 'image/png' } });
    t.equal(late.statusCode, 504, 'a 1 ms deadline for 16 samples');
    t.equal(late.headers.etag, undefined, 'the 504 has no ETag');
    t.equal(late.headers['cache-control'], 'no-store', 'and is not cached');
  });

  t.test('no seed: one is drawn, echoed, and reproduces the images', async (t) => {
    const a = (await post(app, {})).json();
    t.ok(Number.isInteger(a.seed) && a.seed >= 0 && a.seed < 2 ** 32);
    const b = (await post(app, { seed: a.seed })).json();
    t.equal(b.images[0].png, a.images[0].png);
  });

  t.test('Accept: image/png answers one PNG, a grid when count > 1', async (t) => {
    const one = await post(app, { seed: 3 }, 'image/png');
    t.equal(one.statusCode, 200);
    t.equal(one.headers['content-type'], 'image/png');
    t.equal(one.headers['x-seed'], '3');
    const png = await decodePng(one.rawPayload);
    t.same([png.width, png.height, png.channels], [28, 28, 1]);
    const asJson = (await post(app, { seed: 3 })).json();
    t.same(png.data, (await decodePng(asJson.images[0].png)).data, 'the PNG is the JSON image');
    t.equal(Number(one.headers['x-bits-per-dim']), Number(asJson.images[0].bitsPerDim.toFixed(6)));

    const four = await post(app, { seed: 3, count: 4 }, 'image/png');
    const g = await decodePng(four.rawPayload);
    t.same([g.width, g.height], [58, 58], '2x2 grid of 28x28 with a 2-pixel gap');
    const json4 = (await post(app, { seed: 3, count: 4 })).json();
    const last = await decodePng(json4.images[3].png);
    for (const [y, x] of [[0, 0], [13, 17], [27, 27]]) {
      t.equal(g.data[(30 + y) * 58 + 30 + x], last.data[y * 28 + x], `cell 4 pixel ${y},${x}`);
    }
  });

  t.test('stopAfter: only the small image is generated', async (t) => {
    const body = (await post(app, { seed: 5, stopAfter: 'small' })).json();
    t.equal(body.stoppedAfter, 'small');
    const px = await decodePng(body.images[0].png);
    let outside = 0;
    let lowBits = 0;
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = px.data[y * 28 + x];
        if (y % 4 || x % 4) outside += v;
        else lowBits += v & 0x1f;
      }
    }
    t.equal(outside, 0, 'outside slice (0,0): not generated');
    t.equal(lowBits, 0, 'only the 3 high bits of slice (0,0)');
  });

  t.test('conditioning: complete keeps the first slices, add-depth keeps the high bits', async (t) => {
    const given = (await post(app, { seed: 11 })).json().images[0].png;
    const src = (await decodePng(given)).data;
    const done = (await post(app, { seed: 12, condition: { mode: 'complete', image: given, slices: 4 } })).json();
    const out = (await decodePng(done.images[0].png)).data;
    let kept = 0;
    let differs = 0;
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const i = y * 28 + x;
        if (y % 4 === 0) kept += Number(out[i] === src[i]);
        else differs += Number(out[i] !== src[i]);
      }
    }
    t.equal(kept, 7 * 28, 'slices 0..3 (row offset 0) are the given pixels');
    t.ok(differs > 0, 'the rest is generated');

    const deep = (await post(app, { seed: 13, condition: { mode: 'add-depth', image: given } })).json();
    const d = (await decodePng(deep.images[0].png)).data;
    let high = 0;
    for (let i = 0; i < 784; i++) high += Number((d[i] & 0xe0) === (src[i] & 0xe0));
    t.equal(high, 784, 'every pixel keeps its 3 high bits');

    const wrong = await post(app, { model: 'tiny-c3', condition: { mode: 'add-depth', image: given } });
    t.equal(wrong.statusCode, 422);
    t.match(wrong.json(), { error_type: 'image_mismatch', error: /1 channel \(grey\) but the model takes 3 channels/ });
    const stray = await post(app, { condition: { mode: 'add-depth', image: given, slices: 3 } });
    t.equal(stray.statusCode, 400, 'slices with another mode: refused, not ignored');
    t.same(stray.json(), { error: "body/condition/slices is for mode 'complete' only, not 'add-depth'", error_type: 'bad_request' });
    const tooMany = await post(app, { condition: { mode: 'complete', image: given, slices: 16 } });
    t.equal(tooMany.statusCode, 422);
    t.same(tooMany.json(), { error: 'slices must be between 1 and 15 for subscale factor 4', error_type: 'invalid_input' });
  });

  t.test('conditioning on an image of another size or colour: refused, unless condition.convert asks; the answer says what was done', async (t) => {
    // a 40x36 colour image: neither the size nor the channels of tiny-c1 (28x28 grey)
    const rgb = Uint8Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 37 + (i % 3) * 60) % 256);
    const png = await rawToPng(rgb, 40, 36, 3);
    const image = png.toString('base64');
    const refused = await post(app, { seed: 3, condition: { mode: 'complete', image, slices: 2 } });
    t.equal(refused.statusCode, 422);
    t.same(refused.json(), {
      error_type: 'image_mismatch',
      error: "the image does not fit model 'tiny-c1': it has 3 channels (RGB) but the model takes 1 channel (grey) (send such an image, or ask for condition.convert.grayscale); " +
        'it is 40x36 but the model takes 28x28 (send such an image, or ask for condition.convert.resize)',
    }, 'the refusal names the options of /sample, not those of /likelihood');
    const half = await post(app, { seed: 3, condition: { mode: 'complete', image, slices: 2, convert: { grayscale: true } } });
    t.equal(half.statusCode, 422, 'one conversion of two is not enough');
    t.match(half.json().error, /^the image does not fit model 'tiny-c1': it is 40x36 but the model takes 28x28 \(send such an image, or ask for condition\.convert\.resize\)$/);

    const res = await post(app, { seed: 3, condition: { mode: 'complete', image, slices: 2, convert: { resize: true, grayscale: true } } });
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.same(body.condition, {
      mode: 'complete',
      input: { format: 'png', width: 40, height: 36, channels: 3, conversions: ['converted RGB to grey (Rec. 601 luma)', 'resized 40x36 to 28x28 (scaled to cover, centre-cropped)'] },
    });
    // slices 0 and 1 (offsets (0,0), (0,1) at S = 4) are the converted image's pixels
    const converted = (await decodeImage(png, { name: 'tiny-c1', height: 28, width: 28, channels: 1 }, { resize: true, grayscale: true }, 1 << 20)).image.data;
    const out = (await decodePng(body.images[0].png)).data;
    let kept = 0;
    for (let y = 0; y < 28; y += 4) for (let x = 0; x < 28; x++) if (x % 4 < 2) kept += Number(out[y * 28 + x] === converted[y * 28 + x]);
    t.equal(kept, 7 * 14, 'the kept slices are the converted pixels');
    const again = await post(app, { seed: 3, condition: { mode: 'complete', image, slices: 2, convert: { resize: true, grayscale: true } } });
    t.equal(again.json().images[0].png, body.images[0].png, 'the same seed and image give the same sample');
    const none = (await post(app, { seed: 3 })).json();
    t.notOk('condition' in none, 'no condition, no condition in the answer');
    const stream = parseSse((await post(app, { seed: 3, condition: { mode: 'complete', image, slices: 2, convert: { resize: true, grayscale: true } } }, 'text/event-stream')).body);
    t.same(JSON.parse(stream.find((e) => e.event === 'done')!.data).condition, body.condition, 'the done event carries it too');
    // an image far from the model's shape: refused, not a 500 (sharp could not scale it to cover)
    const sliver = (await rawToPng(new Uint8Array(200_000), 1, 200_000, 1)).toString('base64');
    const thin = await post(app, { condition: { mode: 'complete', image: sliver, slices: 2, convert: { resize: true } } });
    t.equal(thin.statusCode, 422);
    t.same(thin.json(), {
      error: "the image is 1x200000: scaled to cover 28x28 it would be 28x5600000, more than the limit of 16777216 pixels; crop it nearer the model's shape first",
      error_type: 'image_mismatch',
    });
    const unknown = await post(app, { condition: { mode: 'upscale', image, convert: { sharpen: true } } });
    t.equal(unknown.statusCode, 400);
    t.match(unknown.json().error, /condition\/convert.*sharpen/);
  });

  t.test('colour model: RGB PNGs', async (t) => {
    const body = (await post(app, { model: 'tiny-c3', seed: 2 })).json();
    const px = await decodePng(body.images[0].png);
    t.same([px.width, px.height, px.channels], [28, 28, 3]);
  });

  t.test('event stream: slices in subscale order per stage, stage events, done equals JSON', async (t) => {
    const res = await post(app, { seed: 21 }, 'text/event-stream');
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    t.equal(res.headers['x-accel-buffering'], 'no');
    t.match(res.headers['cache-control'], /no-cache/);
    const events = parseSse(res.payload);
    const slices = events.filter((e) => e.event === 'slice').map((e) => JSON.parse(e.data));
    t.same(slices.map((s) => `${s.stage}:${s.slice}`), [
      'small:0',
      ...Array.from({ length: 15 }, (_, k) => `size:${k + 1}`),
      ...Array.from({ length: 16 }, (_, k) => `depth:${k}`),
    ]);
    for (const s of slices) t.same(s.offset, [Math.floor(s.slice / 4), s.slice % 4]);
    t.same(events.filter((e) => e.event === 'stage').map((e) => JSON.parse(e.data).stage), ['small', 'size', 'depth']);
    t.equal(events.at(-1)!.event, 'done');
    const done = JSON.parse(events.at(-1)!.data);
    const json = (await post(app, { seed: 21 })).json();
    t.same(done.images, json.images, 'streamed final images are the JSON ones');
    t.equal(done.seed, 21);
    t.same(events.map((e) => e.id), [...events.slice(0, -1).map((_, i) => `21:${i + 1}`), 'end'], 'ids seed:1, seed:2, ... and end for done');
  });

  t.test('an EventSource reconnecting after the end (Last-Event-ID: end) gets 204 and nothing runs', async (t) => {
    const samples = async () => metricValue((await app.inject('/metrics')).body, 'spn_samples_generated_total', { model: 'tiny-c1' });
    const before = (await samples())!;
    const again = await app.inject({ method: 'GET', url: '/sample?seed=21', headers: { accept: 'text/event-stream', 'last-event-id': 'end' } });
    t.equal(again.statusCode, 204);
    t.equal(again.body, '');
    t.equal(again.headers['cache-control'], 'no-store');
    t.equal(await samples(), before, 'no sample was drawn');
    // an id that is not one of this server's starts the stream again, from its first event
    const resumed = await app.inject({ method: 'GET', url: '/sample?seed=21', headers: { accept: 'text/event-stream', 'last-event-id': '7' } });
    t.equal(resumed.statusCode, 200);
    t.equal(parseSse(resumed.body)[0].id, '21:1');
    t.equal(parseSse(resumed.body).at(-1)!.event, 'done');
    t.equal(await samples(), before + 1);
    // HEAD answers what GET would: the 204
    const head = await app.inject({ method: 'HEAD', url: '/sample?seed=21', headers: { accept: 'text/event-stream', 'last-event-id': 'end' } });
    t.equal(head.statusCode, 204, 'HEAD: the 204 GET gives');
    t.equal(head.headers['cache-control'], 'no-store');
    // POST is never reconnected by a browser: the header changes nothing there
    const viaPost = await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'text/event-stream', 'last-event-id': 'end' }, payload: { seed: 21 } });
    t.equal(viaPost.statusCode, 200, 'POST samples whatever Last-Event-ID says');
    t.equal(await samples(), before + 2, 'two samples in all: the resumed GET and the POST');
    // the id only matters to streams: a PNG request with it is answered as ever
    const png = await app.inject({ method: 'GET', url: '/sample?seed=21', headers: { accept: 'image/png', 'last-event-id': 'end' } });
    t.equal(png.statusCode, 200);
  });

  t.test('an EventSource reconnecting in the middle (Last-Event-ID: seed:n) gets the rest of the same stream', async (t) => {
    /** A stream's events with what differs between runs (timings) left out. */
    const stable = (body: string) => parseSse(body).map((e) => {
      const data = JSON.parse(e.data) as Record<string, unknown>;
      delete data.elapsedMs;
      delete data.timings;
      return { id: e.id, event: e.event, data };
    });
    const stream = (url: string, lastId?: string) => app.inject({
      method: 'GET', url, headers: { accept: 'text/event-stream', ...(lastId === undefined ? {} : { 'last-event-id': lastId }) },
    });
    const resumes = async (method: string) => metricValue((await app.inject('/metrics')).body, 'spn_stream_resumes_total', { method });
    const [getBefore, postBefore] = [await resumes('GET'), await resumes('POST')];
    t.equal(typeof getBefore, 'number', 'the series exist before any resume');
    const full = stable((await stream('/sample?seed=33&count=3')).body);
    t.ok(full.length > 20, `${full.length} events`);
    for (const k of [1, 5, full.length - 2, full.length - 1]) {
      const rest = stable((await stream('/sample?seed=33&count=3', `33:${k}`)).body);
      t.same(rest, full.slice(k), `after event ${k}: events ${k + 1}.. and done, the same ones`);
    }
    // a dropped connection of an unseeded stream: the id carries the seed it drew
    const first = parseSse((await stream('/sample?count=2')).body);
    const [seed] = first[0].id!.split(':');
    t.equal(JSON.parse(first.at(-1)!.data).seed, Number(seed), 'the id names the drawn seed');
    const drop = 4;
    const tail = stable((await stream('/sample?count=2', `${seed}:${drop}`)).body);
    t.same(tail, stable((await stream(`/sample?count=2&seed=${seed}`)).body).slice(drop), 'resumed with the same seed');
    // a query naming another seed is another stream: it starts from the beginning
    const other = parseSse((await stream('/sample?seed=34', '33:5')).body);
    t.equal(other[0].id, '34:1');
    t.equal(JSON.parse(other.at(-1)!.data).seed, 34);
    // an event number past the stream's end, however many digits: only done; leading zeros are the number
    for (const id of ['33:999999999', '33:10000000000', `33:${'9'.repeat(40)}`]) {
      const past = stable((await stream('/sample?seed=33&count=3', id)).body);
      t.same(past, full.slice(-1), `${id}: only done`);
    }
    t.same(stable((await stream('/sample?seed=33&count=3', '0033:0005')).body), full.slice(5), '0033:0005 is 33:5');
    // ids that are not ours, or seeds past the range, are ignored
    for (const id of ['33:', ':5', '33:5:1', 'x:5', '4294967296:5', `${'9'.repeat(30)}:5`, '33:-1', '33:1.5', ' 33 : 5']) {
      const fresh = parseSse((await stream('/sample?seed=33', id)).body);
      t.equal(fresh[0].id, '33:1', `${id}: from the beginning`);
    }
    // POST resumes the same way, for fetch-based clients that retry with the header (a conditional
    // stream too: the same body and seed make the same events), with or without the seed in the body
    const postStream = (payload: object, lastId?: string) => app.inject({
      method: 'POST', url: '/sample', payload,
      headers: { accept: 'text/event-stream', ...(lastId === undefined ? {} : { 'last-event-id': lastId }) },
    });
    t.same(stable((await postStream({ seed: 33, count: 3 }, '33:5')).body), full.slice(5), 'POST with the same options: the same rest');
    const png = (await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'image/png' }, payload: { seed: 2 } })).rawPayload;
    const conditioned = { count: 2, condition: { mode: 'complete', slices: 1, image: png.toString('base64') } };
    const whole = stable((await postStream({ ...conditioned, seed: 44 })).body);
    t.same(stable((await postStream(conditioned, '44:3')).body), whole.slice(3), 'a conditional POST without a seed: the id\'s seed, the rest');
    t.equal(parseSse((await postStream({ seed: 35 }, '33:5')).body)[0].id, '35:1', 'POST naming another seed: from the beginning');
    // counted: GET 4 resume points + 3 past the end + 0033:0005 + the unseeded one; POST 2
    t.equal(await resumes('GET'), getBefore! + 9, 'GET resumes counted');
    t.equal(await resumes('POST'), postBefore! + 2, 'POST resumes counted');
  });

  t.test('in-band errors are not used for refusals that come before the first byte', async (t) => {
    const res = await post(app, { stopAfter: 'nope' }, 'text/event-stream');
    t.equal(res.statusCode, 422);
    t.equal(res.json().error_type, 'invalid_input');
  });
});

t.test('a full queue answers 429 with Retry-After at once; the request in flight is undisturbed', async (t) => {
  const app = await readyApp({ MAX_RUNNING: 1, MAX_QUEUE: 0 });
  t.teardown(() => app.close());
  let firstDone = false;
  const first = post(app, { model: 'tiny-c3', count: 16, seed: 1 }).finally(() => { firstDone = true; });
  // wait until the first request holds the only place
  while (app.runtime.stats().running < 1) await new Promise((r) => setTimeout(r, 5));
  for (const accept of ['application/json', 'text/event-stream', 'image/png']) {
    const res = await post(app, { seed: 2 }, accept);
    t.equal(res.statusCode, 429, accept);
    t.equal(res.headers['retry-after'], '1');
    t.same(res.json(), { error: 'Model is overloaded', error_type: 'overloaded' });
  }
  t.notOk(firstDone, 'refused at once: the first request was still running after all three refusals');
  const ok = await first;
  t.equal(ok.statusCode, 200);
  t.equal(ok.json().images.length, 16);
  t.equal((await post(app, { seed: 2 })).statusCode, 200, 'served once the place is free');
  const metrics = (await app.inject('/metrics')).body;
  t.match(metrics, /spn_request_failures_total\{route="\/sample",reason="overloaded"\} 3/);
  t.match(metrics, /spn_runtime_failures_total\{reason="overloaded"\} 3/);
});
