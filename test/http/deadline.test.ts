// Request deadlines: REQUEST_TIMEOUT_MS and a request's own timeoutMs. Past the deadline a JSON
// answer is 504 {error_type: 'timeout'}, a stream ends with an in-band timeout error, a request
// still queued leaves the queue, the failure is counted once with reason "timeout", and the
// server goes on serving. The generations here decode one run per pixel (DECODE=pixel), so they
// take far longer than the deadlines set (hundreds of ms against 30).
import t from 'tap';
import Fastify from 'fastify';
import { connect } from 'node:net';
import { once } from 'node:events';
import { effectiveTimeout, requestAbort } from '../../src/http/deadline.js';
import { ClientGoneAbort } from '../../src/http/errors.js';
import { listening, metricValue, readSse, readyApp, sleep } from './helpers.js';

t.test('effectiveTimeout: the shorter of the server\'s and the request\'s; 0 is none', async (t) => {
  t.equal(effectiveTimeout(60000, undefined), 60000);
  t.equal(effectiveTimeout(60000, 250), 250);
  t.equal(effectiveTimeout(100, 250), 100);
  t.equal(effectiveTimeout(0, 250), 250);
  t.equal(effectiveTimeout(0, undefined), 0);
});

t.test('requestAbort after the client has gone (it hung up while its images were decoded): aborted at once, as a hang-up', async (t) => {
  // the routes set up a request's abort after awaiting its body's images; a hang-up in that await
  // went unseen (its 'close' had fired), and the request generated every sample for nobody
  const app = Fastify();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const atGate = new Promise<void>((r) => (reached = r));
  const seen = new Promise<{ aborted: boolean; reason: unknown }>((resolve) => {
    app.get('/slow', async (request, reply) => {
      reached();
      await gate;   // (decoding the images)
      const { ac, finish } = requestAbort({ track: () => () => {} }, reply, 0);
      resolve({ aborted: ac.signal.aborted, reason: ac.signal.reason });
      finish();
      return 'late';
    });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const socket = connect((app.server.address() as { port: number }).port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await atGate;
  socket.destroy();
  await sleep(100);   // the server sees the close
  release();
  const { aborted, reason } = await seen;
  t.ok(aborted, 'aborted when set up');
  t.ok(reason instanceof ClientGoneAbort, 'as a hang-up, not a deadline');
});

t.test('a JSON sample past its timeoutMs: 504 timeout, counted once; the next request is served', async (t) => {
  const app = await readyApp({ DECODE: 'pixel' });
  t.teardown(() => app.close());
  const started = Date.now();
  const res = await app.inject({ method: 'POST', url: '/sample', payload: { count: 16, seed: 1, timeoutMs: 30 } });
  const took = Date.now() - started;
  t.equal(res.statusCode, 504);
  t.same(res.json(), { error: 'request timed out after 30 ms', error_type: 'timeout' });
  t.ok(took < 1000, `answered soon after the deadline (${took} ms)`);
  const metrics = (await app.inject({ url: '/metrics' })).body;
  t.equal(metricValue(metrics, 'spn_request_failures_total', { route: '/sample', reason: 'timeout' }), 1);
  // the runtime tells a passed deadline from a hang-up (both were 'cancelled' there)
  t.equal(metricValue(metrics, 'spn_runtime_failures_total', { reason: 'timeout' }), 1);
  t.equal(metricValue(metrics, 'spn_runtime_failures_total', { reason: 'cancelled' }), 0);
  t.equal(metricValue(metrics, 'spn_running_requests'), 0, 'its place is free');

  const ok = await app.inject({ method: 'POST', url: '/sample', payload: { seed: 1, timeoutMs: 60000 } });
  t.equal(ok.statusCode, 200, 'a request with time enough runs');
});

t.test('REQUEST_TIMEOUT_MS applies to every request and caps a longer timeoutMs', async (t) => {
  const app = await readyApp({ DECODE: 'pixel', REQUEST_TIMEOUT_MS: 30 });
  t.teardown(() => app.close());
  const none = await app.inject({ method: 'POST', url: '/sample', payload: { count: 16, seed: 2 } });
  t.equal(none.statusCode, 504);
  t.same(none.json(), { error: 'request timed out after 30 ms', error_type: 'timeout' });
  const longer = await app.inject({ method: 'POST', url: '/sample', payload: { count: 16, seed: 2, timeoutMs: 600000 } });
  t.equal(longer.statusCode, 504);
  t.same(longer.json(), { error: 'request timed out after 30 ms', error_type: 'timeout' });
});

t.test('a stream past its deadline ends with an in-band timeout error', async (t) => {
  const { app, url } = await listening({ DECODE: 'pixel' });
  t.teardown(() => app.close());
  const res = await fetch(`${url}/sample`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ count: 16, seed: 3, timeoutMs: 30 }),
  });
  t.equal(res.status, 200, 'the stream had begun');
  const { events } = await readSse(res.body!);
  const last = events[events.length - 1];
  t.equal(last.event, 'error');
  t.same(JSON.parse(last.data), { error: 'request timed out after 30 ms', error_type: 'timeout' });
  t.notOk(events.some((e) => e.event === 'done'), 'no done event');
});

t.test('a likelihood request whose deadline passes while it is queued leaves the queue with 504', async (t) => {
  const app = await readyApp({ DECODE: 'pixel', MAX_RUNNING: 1, MAX_QUEUE: 4 });
  t.teardown(() => app.close());
  const png = await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'image/png' }, payload: { seed: 4 } });
  t.equal(png.statusCode, 200);
  // one long sample holds the only place; the scoring request waits behind it
  const blocker = app.inject({ method: 'POST', url: '/sample', payload: { count: 16, seed: 5 } });
  await sleep(20);
  const scored = await app.inject({ method: 'POST', url: '/likelihood?timeoutMs=30', headers: { 'content-type': 'image/png' }, payload: png.rawPayload });
  t.equal(scored.statusCode, 504);
  t.same(scored.json(), { error: 'request timed out after 30 ms', error_type: 'timeout' });
  const queued = metricValue((await app.inject({ url: '/metrics' })).body, 'spn_queue_length');
  t.equal(queued, 0, 'it left the queue');
  t.equal((await blocker).statusCode, 200, 'the running request is undisturbed');
  const again = await app.inject({ method: 'POST', url: '/likelihood', headers: { 'content-type': 'application/json' }, payload: { image: png.rawPayload.toString('base64'), timeoutMs: 60000 } });
  t.equal(again.statusCode, 200, 'scored once there is room');
});

t.test('timeoutMs is validated', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  for (const timeoutMs of [0, -5, 1.5, 'soon']) {
    const res = await app.inject({ method: 'POST', url: '/sample', payload: { timeoutMs } });
    t.equal(res.statusCode, 400, String(timeoutMs));
    t.equal(res.json().error_type, 'validation');
  }
  const q = await app.inject({ method: 'POST', url: '/likelihood?timeoutMs=0', headers: { 'content-type': 'image/png' }, payload: Buffer.from('x') });
  t.equal(q.statusCode, 400);
  t.same(q.json(), { error: 'querystring/timeoutMs must be >= 1', error_type: 'validation' });
});

t.test('Open Inference Protocol infer: the request parameter timeout (µs) is its deadline', async (t) => {
  const app = await readyApp({ DECODE: 'pixel', MAX_RUNNING: 1, MAX_QUEUE: 4 });
  t.teardown(() => app.close());
  const image = Array.from({ length: 28 * 28 }, (_, i) => (i * 7) % 256);
  const infer = (parameters: Record<string, unknown>) => app.inject({
    method: 'POST', url: '/v2/models/tiny-c1/infer',
    payload: { parameters, inputs: [{ name: 'image', shape: [1, 28, 28, 1], datatype: 'UINT8', data: image }] },
  });
  // one long sample holds the only place; the scoring request waits behind it
  const blocker = app.inject({ method: 'POST', url: '/sample', payload: { count: 16, seed: 6 } });
  await sleep(20);
  const late = await infer({ timeout: 29_001 });
  t.equal(late.statusCode, 504);
  t.same(late.json(), { error: 'request timed out after 30 ms', error_type: 'timeout' }, 'µs rounded up to whole ms');
  const metrics = (await app.inject({ url: '/metrics' })).body;
  t.equal(metricValue(metrics, 'spn_queue_length'), 0, 'it left the queue');
  t.equal(metricValue(metrics, 'spn_request_failures_total', { route: '/v2/models/:name/infer', reason: 'timeout' }), 1);
  t.equal((await blocker).statusCode, 200, 'the running request is undisturbed');

  for (const timeout of [0, 60_000_000]) {
    const ok = await infer({ timeout, binary_data_output: false });
    t.equal(ok.statusCode, 200, `timeout ${timeout}: scored`);
    t.equal(ok.json().outputs.length, 3);
  }
  for (const timeout of [-1, 1.5, '30000', 86_400_000_001, null]) {
    const res = await infer({ timeout });
    t.equal(res.statusCode, 400, JSON.stringify(timeout));
    t.match(res.json().error, /^parameters\/timeout is .*: it must be an integer number of microseconds from 0 to 86400000000/);
  }
  // a number JSON cannot hold is named as JavaScript reads it, not as null
  const huge = await app.inject({
    method: 'POST', url: '/v2/models/tiny-c1/infer', headers: { 'content-type': 'application/json' },
    payload: `{"parameters":{"timeout":1e400},"inputs":[{"name":"image","shape":[1,28,28,1],"datatype":"UINT8","data":[${image.join(',')}]}]}`,
  });
  t.equal(huge.statusCode, 400);
  t.match(huge.json().error, /^parameters\/timeout is Infinity: /);
});
