// Pure pieces of the HTTP layer: config, content negotiation, image decoding, PNG grid, heat map, event-stream backpressure.
import { availableParallelism } from 'node:os';
import t from 'tap';
import { modelList } from '../../src/plugins/runtime.js';
import { loadConfig } from '../../src/config.js';
import { negotiate } from '../../src/http/negotiate.js';
import { decodeImage, sniffFormat } from '../../src/http/decode-image.js';
import { crc32, encodePng, grid, GRID_GAP, sliceForDisplay } from '../../src/http/png.js';
import { heatMap } from '../../src/http/heatmap.js';
import { EventStream } from '../../src/http/sse.js';
import { bombPng, decodePng, rawToPng } from './helpers.js';

const model1 = { name: 'm1', height: 8, width: 8, channels: 1 };
const model3 = { name: 'm3', height: 8, width: 8, channels: 3 };
const ramp = (n: number, k = 1) => Uint8Array.from({ length: n }, (_, i) => (i * k) % 256);

t.test('config: defaults, coercion, and a bad variable named', async (t) => {
  const c = loadConfig({});
  t.equal(c.PORT, 8080);
  t.equal(c.HOST, '0.0.0.0');
  t.equal(c.EXECUTION_PROVIDER, 'auto');
  t.equal(c.BODY_LIMIT, 4 * 1024 * 1024);
  t.equal(c.MAX_QUEUE, 64);
  t.equal(c.MAX_RUNNING, 32);
  t.equal(c.SHUTDOWN_GRACE_MS, 10000);
  t.equal(c.DECODE, 'row');
  t.equal(c.WORKERS, Math.max(1, Math.min(availableParallelism(), 8)), 'one worker per core by default');
  t.equal(loadConfig({ DECODE: 'pixel' }).DECODE, 'pixel');
  t.equal(loadConfig({ PORT: '9000', WORKERS: '3' }).PORT, 9000);
  t.throws(() => loadConfig({ EXECUTION_PROVIDER: 'tpu' }), { message: 'EXECUTION_PROVIDER must be one of auto, cuda, cpu' }, 'a choice of words: one clause listing them');
  // Ajv turns 'Infinity' and '1e999' into numbers past every bound (ajv#2212); timers cap at a day
  // (Node fires anything over 2^31 - 1 ms after 1 ms)
  t.throws(() => loadConfig({ WORKERS: 'Infinity', MAX_QUEUE: '1e999' }), { message: 'WORKERS must be a finite number; MAX_QUEUE must be a finite number' });
  t.throws(() => loadConfig({ REQUEST_TIMEOUT_MS: String(2 ** 31) }), { message: 'REQUEST_TIMEOUT_MS must be <= 86400000' });
  for (const k of ['RECEIVE_TIMEOUT_MS', 'SHUTDOWN_GRACE_MS', 'SSE_KEEPALIVE_MS']) t.throws(() => loadConfig({ [k]: '86400001' }), { message: `${k} must be <= 86400000` });
  t.throws(() => loadConfig({ MAX_IMAGE_PIXELS: '1e20' }), /MAX_IMAGE_PIXELS must be <= 1073741824/);
  t.equal(loadConfig({ REQUEST_TIMEOUT_MS: '86400000' }).REQUEST_TIMEOUT_MS, 86_400_000, 'a day is allowed');
  t.throws(() => loadConfig({ LOG_LEVEL: 'verbose', PORT: 'eighty' }), { message: 'PORT must be integer; LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent' });
  t.throws(() => loadConfig({ DECODE: 'column' }), /DECODE/);
  t.throws(() => loadConfig({ PORT: 'eighty' }), /PORT/);
  t.throws(() => loadConfig({ WORKERS: '0' }), /WORKERS/);
  t.throws(() => loadConfig({ WORKERS: '0x2', PORT: '0b1' }), { message: 'PORT must be integer; WORKERS must be integer' }, 'hex and binary are not decimals (Number() read 0x2 as 2)');
  t.equal(loadConfig({ WORKERS: ' 3 ', BODY_LIMIT: '2e6' }).BODY_LIMIT, 2e6, 'decimals, with an exponent');
  t.throws(() => loadConfig({ HOST: '' }), { message: 'HOST must not be empty' }, 'an empty host bound every interface');
  t.throws(() => loadConfig({ MODELS_DIR: '' }), { message: 'MODELS_DIR must not be empty' }, 'named, not a failed scandir of \'\'');
  t.throws(() => loadConfig({ MODELS_DIR: '  ' }), { message: 'MODELS_DIR must be a folder, not blank' });
  // Number(' ') is 0: a blank PORT listened on any free port, a blank timeout meant none
  t.throws(() => loadConfig({ PORT: ' ', REQUEST_TIMEOUT_MS: '\t', MAX_QUEUE: '  ' }), { message: 'PORT must be integer; MAX_QUEUE must be integer; REQUEST_TIMEOUT_MS must be integer' }, 'a blank number is refused, not read as 0');
  t.throws(() => loadConfig({ WORKERS: '0x2', THREADS: 'Infinity' }), { message: 'WORKERS must be integer; THREADS must be a finite number' }, 'every bad number in one message');
  t.throws(() => loadConfig({ API_KEYS: 'short' }), { message: 'API_KEYS must be comma-separated keys of 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -' }, 'in words, not the pattern');
  t.throws(() => loadConfig({ CORS_ORIGINS: 'https://a.example/' }), { message: /^CORS_ORIGINS must be \* or comma-separated origins/ });
  t.throws(() => loadConfig({ MODELS: 'tiny-c1/' }), { message: 'MODELS must be comma-separated model names (letters, digits, . _ -)' });
  t.equal(c.SHUTDOWN_DELAY_MS, 0, 'the port closes at once by default');
  t.equal(loadConfig({ SHUTDOWN_DELAY_MS: '5000' }).SHUTDOWN_DELAY_MS, 5000);
  t.equal(c.MODELS, '', 'every model by default');
  t.equal(c.RECEIVE_TIMEOUT_MS, 30000);
  t.throws(() => loadConfig({ MODELS: 'a;rm -rf' }), /MODELS/);
  t.equal(modelList(''), undefined);
  t.equal(modelList(' , '), undefined);
  t.same(modelList(' mu-fmnist, tiny-c1 ,mu-fmnist,'), ['mu-fmnist', 'tiny-c1'], 'trimmed, blanks and repeats dropped');
});

t.test('negotiate: weights, wildcards, specificity', async (t) => {
  const offers = ['application/json', 'text/event-stream', 'image/png'] as const;
  t.equal(negotiate(undefined, offers), 'application/json');
  t.equal(negotiate('*/*', offers), 'application/json');
  t.equal(negotiate('text/event-stream', offers), 'text/event-stream');
  t.equal(negotiate('image/*', offers), 'image/png');
  t.equal(negotiate('application/json;q=0.5, image/png', offers), 'image/png');
  t.equal(negotiate('application/json;q=0, */*', offers), 'text/event-stream');
  t.equal(negotiate('text/html', offers), undefined);
});

t.test('sniffFormat reads magic bytes only', async (t) => {
  t.equal(sniffFormat(await rawToPng(ramp(64), 8, 8, 1, 'png')), 'png');
  t.equal(sniffFormat(await rawToPng(ramp(64), 8, 8, 1, 'jpeg')), 'jpeg');
  t.equal(sniffFormat(await rawToPng(ramp(192), 8, 8, 3, 'webp')), 'webp');
  t.equal(sniffFormat(Buffer.from('GIF89a......')), undefined);
});

t.test('decodeImage: exact pixels of a fitting PNG, no conversions', async (t) => {
  const px = ramp(64, 3);
  const d = await decodeImage(await rawToPng(px, 8, 8, 1), model1, {}, 1e6);
  t.same([...d.image.data], [...px]);
  t.same(d.conversions, []);
  t.same(d.source, { format: 'png', width: 8, height: 8, channels: 1 });
});

t.test('decodeImage refuses non-images, truncated images and bombs', async (t) => {
  await t.rejects(decodeImage(Buffer.from('definitely not an image'), model1, {}, 1e6), { statusCode: 400, code: 'SPN_BAD_IMAGE' });
  const png = await rawToPng(ramp(64), 8, 8, 1);
  await t.rejects(decodeImage(png.subarray(0, png.length - 20), model1, {}, 1e6), { statusCode: 400, code: 'SPN_BAD_IMAGE' });
  const jpeg = await rawToPng(ramp(64), 8, 8, 1, 'jpeg');
  await t.rejects(decodeImage(jpeg.subarray(0, jpeg.length / 2), model1, {}, 1e6), { statusCode: 400, message: /corrupt or truncated/ });
  // 100000 x 100000 declared: refused from the header; decoding it would need 10 GB.
  const bomb = await bombPng(100_000, 100_000);
  t.ok(bomb.length < 200, 'the bomb itself is tiny');
  await t.rejects(decodeImage(bomb, model1, {}, 4096 * 4096), { statusCode: 413, code: 'SPN_IMAGE_TOO_LARGE', message: /100000x100000/ });
});

t.test('decodeImage: mismatches are 422 naming what differs, unless conversion is asked for', async (t) => {
  const rgb = await rawToPng(ramp(192, 7), 8, 8, 3);
  await t.rejects(decodeImage(rgb, model1, {}, 1e6), { statusCode: 422, message: /3 channels \(RGB\) but the model takes 1 channel/ });
  const grey = await decodeImage(rgb, model1, { grayscale: true }, 1e6);
  t.equal(grey.image.channels, 1);
  const src = ramp(192, 7);
  t.equal(grey.image.data[5], Math.round(0.299 * src[15] + 0.587 * src[16] + 0.114 * src[17]));
  t.same(grey.conversions, ['converted RGB to grey (Rec. 601 luma)']);

  const big = await rawToPng(ramp(256), 16, 16, 1);
  await t.rejects(decodeImage(big, model1, {}, 1e6), { statusCode: 422, message: /16x16 but the model takes 8x8/ });
  const small = await decodeImage(big, model1, { resize: true }, 1e6);
  t.same([small.image.width, small.image.height, small.image.channels], [8, 8, 1]);
  t.match(small.conversions[0], /resized 16x16 to 8x8/);

  const g = await rawToPng(ramp(64), 8, 8, 1);
  await t.rejects(decodeImage(g, model3, {}, 1e6), { statusCode: 422, message: /convert\.rgb/ });
  const asRgb = await decodeImage(g, model3, { rgb: true }, 1e6);
  t.same([...asRgb.image.data.subarray(0, 6)], [0, 0, 0, 1, 1, 1]);
});

t.test('decodeImage: lossless container differences are read, and reported', async (t) => {
  // WebP has no grey mode: a grey image comes back as three equal channels.
  const px = ramp(64, 5);
  const webp = await rawToPng(px, 8, 8, 1, 'webp');
  const d = await decodeImage(webp, model1, {}, 1e6);
  t.same([...d.image.data], [...px]);
  t.match(d.conversions[0], /three channels are equal/);
  // an opaque alpha channel is dropped; a transparent pixel is refused
  const rgba = new Uint8Array(64 * 4).fill(255);
  const opaque = await decodeImage(await rawToPng(rgba, 8, 8, 4), model3, {}, 1e6);
  t.equal(opaque.image.channels, 3);
  t.match(opaque.conversions[0], /alpha/);
  rgba[7] = 0;
  await t.rejects(decodeImage(await rawToPng(rgba, 8, 8, 4), model3, {}, 1e6), { statusCode: 422, message: /transparent/ });
});

t.test('PNG: encode round trip, slice stretch, grid layout', async (t) => {
  const img = { height: 4, width: 5, channels: 1, data: ramp(20, 11) };
  const back = await decodePng(encodePng(img));
  t.same([back.width, back.height, back.channels], [5, 4, 1]);
  t.same([...back.data], [...img.data]);
  // RGB, and rows wider than one deflate block: read back by libpng (through sharp), which checks
  // every chunk's CRC
  const rgb = { height: 48, width: 700, channels: 3, data: Uint8Array.from({ length: 48 * 700 * 3 }, (_, i) => (i * 7919) % 251) };
  const rgbBack = await decodePng(encodePng(rgb));
  t.same([rgbBack.width, rgbBack.height, rgbBack.channels, rgbBack.format], [700, 48, 3, 'png']);
  t.ok(Buffer.from(rgb.data).equals(rgbBack.data), 'RGB pixels round-trip');
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'CRC-32 check value');
  t.throws(() => encodePng({ height: 2, width: 2, channels: 1, data: new Uint8Array(3) }), /holds 3 bytes/);
  t.throws(() => encodePng({ height: 1, width: 1, channels: 4, data: new Uint8Array(4) }), /4-channel/);
  t.same([...sliceForDisplay(Uint8Array.from([0, 3, 7]), 1, 3, 1, 3).data], [0, 109, 255]);
  const images = [1, 2, 3].map((v) => ({ height: 2, width: 2, channels: 3, data: new Uint8Array(12).fill(v) }));
  const g = grid(images);
  t.same([g.width, g.height], [2 * 2 + GRID_GAP, 2 * 2 + GRID_GAP]);
  t.equal(g.data[0], 1);
  t.equal(g.data[(0 * g.width + 2 + GRID_GAP) * 3], 2);
  t.equal(g.data[((2 + GRID_GAP) * g.width + 0) * 3], 3);
  t.equal(g.data[((2 + GRID_GAP) * g.width + 2 + GRID_GAP) * 3], 0, 'the empty cell stays black');
});

t.test('heat map: ends of the ramp at min and max', async (t) => {
  const h = heatMap(Float32Array.from([0, 1, 2, 4]), 2, 2);
  t.equal(h.minBits, 0);
  t.equal(h.maxBits, 4);
  t.same([...h.image.data.subarray(0, 3)], [0, 0, 4]);
  t.same([...h.image.data.subarray(9, 12)], [252, 255, 164]);
  t.throws(() => heatMap(new Float32Array(3), 2, 2), /per-pixel bits hold 3 values, expected 2x2/);
});

t.test('EventStream.send waits for a slow reader, but not past its signal', async (t) => {
  const sse = new EventStream(60_000);
  t.teardown(() => sse.end());
  const big = 'x'.repeat(64 * 1024);
  // nobody reads the body: the first large event leaves it needing a drain
  await sse.send('slice', big);
  await new Promise((r) => setImmediate(r));
  const ac = new AbortController();
  let settled = false;
  const pending = sse.send('slice', big, ac.signal).then(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 30));
  t.equal(settled, false, 'blocked while the reader does not read');
  ac.abort(new Error('deadline'));
  await pending;
  t.equal(settled, true, 'the abort ends the wait');
  // a drain ends it too
  const ac2 = new AbortController();
  let drained = false;
  const second = sse.send('slice', big, ac2.signal).then(() => { drained = true; });
  await new Promise((r) => setTimeout(r, 10));
  sse.body.resume();
  await second;
  t.equal(drained, true, 'a reader that resumes ends the wait');
  t.equal(ac2.signal.aborted, false);
});
