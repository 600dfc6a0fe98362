// Connection-level refusals on a real listening server: a client that stalls its body or headers
// past RECEIVE_TIMEOUT_MS gets 408 and a closed connection, headers over Node's limit 431, bytes
// that are not HTTP 400, each in the one error shape and counted in spn_client_errors_total; a
// request that is received in time is not cut however long the model then takes.
import t from 'tap';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { LINGER_MS } from '../../src/http/linger.js';
import { receiveTimeouts } from '../../src/http/client-error.js';
import { openapiText } from '../../scripts/write-openapi.js';
import { listening, metricValue, rawExchange, readSse, sleep } from './helpers.js';

/** Writes `chunks`, `gapMs` apart, and waits for the server to close the connection. */
async function raw(url: string, chunks: string[], gapMs = 0): Promise<{ text: string; closedAfterMs: number }> {
  const r = await rawExchange(url, chunks, { gapMs, guardMs: 20_000 });
  if (!r.closed) throw new Error(`the server left the connection open for 20 s: ${JSON.stringify(r.text.slice(0, 80))}`);
  return r;
}

/** A raw client connection to `url` that stays half-open after the server's FIN, as an HTTP client
 * still uploading does: what it has read, its first error, and the server's end and the close.
 * (Not events.once for those two, which rejects on the socket's 'error': a failed write is what
 * some tests wait for.) */
async function rawClient(url: string) {
  const s = connect({ port: Number(new URL(url).port), host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  const c = {
    s, text: '', error: undefined as string | undefined,
    ended: new Promise<void>((resolve) => s.once('end', resolve)),
    closed: new Promise<void>((resolve) => s.once('close', resolve)),
  };
  s.on('data', (d: Buffer) => { c.text += d.toString('latin1'); });
  s.on('error', (err: NodeJS.ErrnoException) => { c.error ??= err.code; });
  return c;
}
/** the status lines of the answers in `text`, joined: 'HTTP/1.1 200,HTTP/1.1 413' */
const statuses = (text: string) => text.match(/HTTP\/1\.1 \d+/g)?.join();
const metricsOf = async (url: string) => (await fetch(`${url}/metrics`)).text();
const generated = (m: string) => metricValue(m, 'spn_samples_generated_total', { model: 'tiny-c1' }) ?? 0;

function parse(text: string): { status: number; headers: string; body: unknown } {
  const cut = text.indexOf('\r\n\r\n');
  const head = text.slice(0, cut);
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: JSON.parse(text.slice(cut + 4)) };
}

t.test('receiveTimeouts: the headers within the shorter of the limit and 60 s, checked at a quarter of it (50 ms to 1 s)', async (t) => {
  t.same(receiveTimeouts(30_000), { requestTimeout: 30_000, headersTimeout: 30_000, connectionsCheckingInterval: 1_000 });
  t.same(receiveTimeouts(120_000), { requestTimeout: 120_000, headersTimeout: 60_000, connectionsCheckingInterval: 1_000 });
  t.same(receiveTimeouts(400), { requestTimeout: 400, headersTimeout: 400, connectionsCheckingInterval: 100 });
  t.same(receiveTimeouts(100), { requestTimeout: 100, headersTimeout: 100, connectionsCheckingInterval: 50 });
  t.same(receiveTimeouts(0), { requestTimeout: 0, headersTimeout: 60_000, connectionsCheckingInterval: 30_000 });
});

t.test('connection-level refusals, each in the error shape and counted; the server goes on serving', async (t) => {
  const { app, url } = await listening({ RECEIVE_TIMEOUT_MS: 200, DECODE: 'pixel' });
  t.teardown(() => app.close());
  const count = async (reason: string) => metricValue((await app.inject({ url: '/metrics' })).body, 'spn_client_errors_total', { reason });
  t.equal(await count('request_timeout'), 0, 'a zero series before the first');

  await t.test('a body stalled after its headers: 408, closed soon after the limit', async (t) => {
    const r = await raw(url, ['POST /likelihood HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image":"iVBOR']);
    const res = parse(r.text);
    t.equal(res.status, 408);
    t.same(res.body, { error: 'the request was not received in time', error_type: 'request_timeout' });
    t.match(res.headers, /connection: close/);
    t.ok(r.closedAfterMs >= 190 && r.closedAfterMs < 3000, `closed after ${r.closedAfterMs} ms (limit 200)`);
    t.equal(await count('request_timeout'), 1);
    // the request had been routed: it is counted as its 408, not as a hang-up or a failure of its route
    await sleep(100);
    const m = (await app.inject({ url: '/metrics' })).body;
    const requests = (status_class: string) => metricValue(m, 'spn_http_request_duration_seconds_count', { route: '/likelihood', status_class });
    t.equal(requests('4xx'), 1, 'one 4xx request on /likelihood');
    t.equal(requests('aborted'), undefined, 'not counted as one whose client hung up (it was)');
    t.equal(metricValue(m, 'spn_request_failures_total', { route: '/likelihood', reason: 'bad_input' }), 0, 'not a bad input of /likelihood (it was)');
  });

  await t.test('headers stalled half-way: 408', async (t) => {
    const r = await raw(url, ['POST /sample HTTP/1.1\r\nHost: x\r\nContent-Ty']);
    t.equal(parse(r.text).status, 408);
    t.ok(r.closedAfterMs < 3000, `closed after ${r.closedAfterMs} ms`);
    t.equal(await count('request_timeout'), 2);
  });

  await t.test('a body trickled in pieces that together take longer than the limit: 408', async (t) => {
    const body = JSON.stringify({ count: 1, seed: 1 });
    const head = `POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    // each piece comes 100 ms after the last: no single gap is past the limit, the whole is 2 s
    const r = await raw(url, [head, ...body.split('')], 100);
    t.equal(parse(r.text).status, 408, 'a request is timed as a whole, not per gap');
    t.equal(await count('request_timeout'), 3);
  });

  await t.test('an answer given before the body is in (413 by Content-Length) is not followed by a 408', async (t) => {
    const head = 'POST /likelihood/batch HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 99999999\r\n\r\n';
    // the body keeps coming after the answer, for longer than the receive limit
    const r = await raw(url, [head, ...Array.from({ length: 6 }, () => '--b\r\n')], 100);
    t.equal(r.text.match(/HTTP\/1\.1 \d{3} /g)?.join(','), 'HTTP/1.1 413 ', 'one answer, the 413');
  });

  await t.test("the router's own refusals (414, a bad percent-encoding) before the body is in: one answer, and the connection closes", async (t) => {
    for (const [path, status] of [[`/v2/models/${'a'.repeat(101)}/infer`, 414], ['/models/%zz', 400]] as const) {
      const before = await count('request_timeout');
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
      const r = await raw(url, [head, '{"inputs":', '[', '{'], 100);   // the body stalls after a few bytes
      t.equal(r.text.match(/HTTP\/1\.1 \d{3} /g)?.join(','), `HTTP/1.1 ${status} `, `${status}: one answer (a 408 followed it on the same connection)`);
      t.match(r.text, /connection: close/i, `${status}: Connection: close`);
      t.equal(await count('request_timeout'), before, `${status}: not also counted as a receive timeout`);
    }
  });

  await t.test('a client that closes its side half-way through its body: a hang-up (no answer), not malformed HTTP', async (t) => {
    // (the 413 above was a bad input of this route)
    const badBefore = metricValue((await app.inject({ url: '/metrics' })).body, 'spn_request_failures_total', { route: '/likelihood/batch', reason: 'bad_input' });
    const r = await rawExchange(url, ['POST /likelihood/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"images":['], { finish: 'end' });
    t.ok(r.closed, 'the server closed the connection');
    t.equal(r.text, '', 'no answer (it was 400 "the request is not valid HTTP")');
    await sleep(100);
    const m = (await app.inject({ url: '/metrics' })).body;
    t.equal(await count('malformed'), 0, 'not counted as bytes that are not HTTP (it was)');
    t.equal(metricValue(m, 'spn_http_request_duration_seconds_count', { route: '/likelihood/batch', status_class: 'aborted' }), 1, 'counted as a request whose client hung up');
    t.equal(metricValue(m, 'spn_request_failures_total', { route: '/likelihood/batch', reason: 'cancelled' }), 1, 'a cancelled request of its route');
    t.equal(metricValue(m, 'spn_request_failures_total', { route: '/likelihood/batch', reason: 'bad_input' }), badBefore, 'not a bad input (it was)');
    const cut = await rawExchange(url, ['POST /sample HTTP/1.1\r\nHost: x\r\nContent-Le'], { finish: 'end' });
    t.equal(cut.text, '', 'nor for a client that closes half-way through its headers');
    t.equal(await count('malformed'), 0);
  });

  await t.test('headers over Node\'s limit: 431', async (t) => {
    const r = await raw(url, [`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    const res = parse(r.text);
    t.equal(res.status, 431);
    t.same(res.body, { error: 'the request headers are too large', error_type: 'headers_too_large' });
    t.equal(await count('headers_too_large'), 1);
  });

  await t.test('bytes that are not HTTP: 400', async (t) => {
    const r = await raw(url, ['\x16\x03\x01 this is not a request\r\n\r\n']);
    const res = parse(r.text);
    t.equal(res.status, 400);
    t.same(res.body, { error: 'the request is not valid HTTP', error_type: 'malformed' });
    t.match(r.text, /\r\nCache-Control: no-store\r\n/, 'not cached, as every error');
    t.equal(await count('malformed'), 1);
  });

  await t.test('an HTTP/1.1 request without Host: 400 malformed in the error shape, counted (Node\'s own answer had no body)', async (t) => {
    const r = await raw(url, ['GET /health/live HTTP/1.1\r\nConnection: close\r\n\r\n']);
    const res = parse(r.text);
    t.equal(res.status, 400);
    t.same(res.body, { error: 'an HTTP/1.1 request needs a Host header', error_type: 'malformed' });
    t.match(r.text, /\r\ncache-control: no-store\r\n/i);
    t.equal(await count('malformed'), 2, 'counted with the other malformed requests');
    const old = parse((await raw(url, ['GET /health/live HTTP/1.0\r\n\r\n'])).text);
    t.equal(old.status, 200, 'HTTP/1.0 has no Host requirement');
  });

  await t.test('without Host, every route of the document answers the same 400 (routes whose 400 is also a \'not ready\' body included)', async (t) => {
    const doc = JSON.parse(await openapiText()) as { paths: Record<string, Record<string, unknown>> };
    let routes = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods)) {
        const target = path.replace('{name}', 'tiny-c1').replace('{version}', 'x');
        const r = await raw(url, [`${method.toUpperCase()} ${target} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`]);
        const res = parse(r.text);
        t.equal(res.status, 400, `${method} ${path}`);
        t.same(res.body, { error: 'an HTTP/1.1 request needs a Host header', error_type: 'malformed' }, `${method} ${path}`);
        routes++;
      }
    }
    t.ok(routes >= 18, `${routes} routes`);
  });

  await t.test('a request received in time is not cut while the model takes longer than the limit', async (t) => {
    // eight requests of 16 images share the worker, so that the last answer comes well past the
    // limit on a fast machine too (one alone took 179 ms on one)
    const started = Date.now();
    const answers = await Promise.all([4, 5, 6, 7, 8, 9, 10, 11].map(async (seed) => {
      const res = await fetch(`${url}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: 16, seed }) });
      return { status: res.status, bytes: (await res.arrayBuffer()).byteLength, took: Date.now() - started };
    }));
    t.same(answers.map((a) => a.status), Array(8).fill(200));
    t.ok(answers.every((a) => a.bytes > 0));
    const last = Math.max(...answers.map((a) => a.took));
    t.ok(last > 200, `the last answer took ${last} ms, past the 200 ms receive limit (the premise of this test)`);

    const stream = await fetch(`${url}/sample`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ count: 16, seed: 4 }),
    });
    const { events } = await readSse(stream.body!);
    t.equal(events[events.length - 1].event, 'done', 'a stream longer than the limit ends with done');
  });

  await t.test('a body sent slowly but within the limit is served', async (t) => {
    const body = JSON.stringify({ count: 1, seed: 5 });
    const head = `POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await raw(url, [head, body.slice(0, 5), body.slice(5)], 40);
    t.equal(Number(r.text.split(' ')[1]), 200);
    t.equal(await count('request_timeout'), 3, 'not counted');
  });

  await t.test('bytes that are not HTTP after whole pipelined requests: those are answered first, in order, then 400', async (t) => {
    const body = JSON.stringify({ count: 1, seed: 1 });
    const sample = `POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const before = (await count('malformed')) ?? 0;
    const m0 = (await app.inject({ url: '/metrics' })).body;
    const ok0 = metricValue(m0, 'spn_http_request_duration_seconds_count', { route: '/sample', status_class: '2xx' }) ?? 0;
    const r = await raw(url, [sample + sample + 'NOT HTTP AT ALL\r\n\r\n']);
    t.same(r.text.match(/HTTP\/1\.1 \d{3} /g), ['HTTP/1.1 200 ', 'HTTP/1.1 200 ', 'HTTP/1.1 400 '], 'the two samples, then the refusal (it was one 400, read as the first sample\'s answer)');
    t.match(r.text, /"seed":1,"count":1[\s\S]*"seed":1,"count":1[\s\S]*"error_type":"malformed"/);
    t.equal(await count('malformed'), before + 1);
    await sleep(100);
    const m = (await app.inject({ url: '/metrics' })).body;
    t.equal(metricValue(m, 'spn_http_request_duration_seconds_count', { route: '/sample', status_class: '2xx' }), ok0 + 2, 'both samples counted as answered');
    t.equal(metricValue(m, 'spn_http_request_duration_seconds_count', { route: '/sample', status_class: 'aborted' }), undefined, 'none cut');
  });

  const live = await fetch(`${url}/health/ready`);
  t.equal(live.status, 200, 'still ready');
});

t.test('a request refused before its body is read: the answer, then the server closes its side only, reads and drops the rest, and closes when the client does or after LINGER_MS', async (t) => {
  const { app, url } = await listening({ BODY_LIMIT: 64 * 1024 });
  t.teardown(() => app.close());
  const exchange = async (closeOurSide: boolean) => {
    const c = await rawClient(url);
    const { s } = c;
    s.write(`POST /likelihood HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`);
    await c.ended;   // the server's FIN, after its answer
    const started = Date.now();
    // the client goes on sending (it has not read the answer yet): no reset
    for (let i = 0; i < 16 && !c.error; i++) {
      s.write(Buffer.alloc(64 * 1024));
      await sleep(5);
    }
    const errorWhileSending = c.error;
    if (closeOurSide) s.end();
    // one that goes on sending learns that the server has closed from a failed write
    else while (!s.destroyed && Date.now() - started < LINGER_MS + 10_000) {
      s.write(Buffer.alloc(1024));
      await sleep(100);
    }
    s.destroy();
    await c.closed;
    return { status: Number(c.text.split(' ')[1]), errorWhileSending, error: c.error, closedAfterMs: Date.now() - started };
  };
  const a = await exchange(true);
  t.equal(a.status, 413, 'answered');
  t.equal(a.errorWhileSending, undefined, 'the rest of the body was read, not reset (EPIPE/ECONNRESET)');
  t.equal(a.error, undefined, 'closed cleanly once the client closed');
  const b = await exchange(false);
  t.equal(b.status, 413);
  t.equal(b.errorWhileSending, undefined);
  t.ok(b.error !== undefined && b.closedAfterMs < LINGER_MS + 5_000,
    `a client that neither stops nor closes is closed after LINGER_MS (${b.error} after ${b.closedAfterMs} ms; LINGER_MS ${LINGER_MS})`);
  t.equal((await fetch(`${url}/health/live`)).status, 200, 'still serving');
});

t.test('a connection answered with Connection: close before its body was in processes no further request (RFC 9112, 9.6), and its receive timeout is not a second refusal', async (t) => {
  const { app, url } = await listening({ BODY_LIMIT: 64 * 1024, RECEIVE_TIMEOUT_MS: 1000 });
  t.teardown(() => app.close());
  const sampleReq = (body: string) => `POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const over = `POST /likelihood HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${100_000}\r\n\r\n`;
  const conversation = async (writes: (s: Socket) => Promise<void>) => {
    const c = await rawClient(url);
    await writes(c.s);
    c.s.end();
    await c.closed;
    return c.text;
  };
  const before = await metricsOf(url);
  const body = JSON.stringify({ model: 'tiny-c1', count: 16, seed: 5 });
  // pipelined behind the refused body, in one write
  const piped = await conversation(async (s) => { s.write(over + 'x'.repeat(100_000) + sampleReq(body)); await sleep(500); });
  // and sent after the answer, on the half-closed connection (the refused body first, all of it,
  // or the parser would read the next request as more of that body)
  const after = await conversation(async (s) => {
    s.write(over);
    await new Promise((resolve) => s.once('end', resolve));
    s.write('x'.repeat(100_000) + sampleReq(body));
    await sleep(500);
  });
  // a client still sending, slowly, past the receive timeout
  const slow = await conversation(async (s) => {
    s.write(over);
    for (let i = 0; i < 15; i++) {
      s.write(Buffer.alloc(1000));
      await sleep(100);
    }
  });
  // a request before the refused one, still running when the refusal is decided, is answered first
  const good = JSON.stringify({ model: 'tiny-c1', count: 1, seed: 6 });
  const first = await conversation(async (s) => {
    s.write(sampleReq(good) + over + 'x'.repeat(100) + sampleReq(body));
    await sleep(1500);
  });
  await sleep(300);
  const m = await metricsOf(url);
  for (const [what, text] of [['pipelined', piped], ['after the answer', after], ['slow', slow]] as const) {
    t.equal(statuses(text), 'HTTP/1.1 413', `${what}: one answer, the 413`);
  }
  t.equal(statuses(first), 'HTTP/1.1 200,HTTP/1.1 413', 'a request pipelined before the refused one: answered, then the 413');
  t.equal(generated(m) - generated(before), 1, 'no sample was generated for the requests that came after (one for the one before)');
  t.equal(metricValue(m, 'spn_http_request_duration_seconds_count', { method: 'POST', route: '/sample', status_class: 'aborted' }), undefined, 'nor counted as hang-ups');
  t.equal(metricValue(m, 'spn_client_errors_total', { reason: 'request_timeout' }), 0, 'no 408 counted for a connection already answered');
  t.equal(metricValue(m, 'spn_request_failures_total', { route: '/likelihood', reason: 'bad_input' }), 4, 'the four 413s, once each');
});

t.test('Expect: 100-continue: a request refused from its headers gets its final answer, not 100 Continue first (RFC 9110, 10.1.1); one that will be read gets 100 Continue', async (t) => {
  const { app, url } = await listening({ BODY_LIMIT: 64 * 1024, API_KEYS: 'abcdefghijklmnop0123' });
  t.teardown(() => app.close());
  const firstBytes = async (head: string, body?: Buffer) => {
    const c = await rawClient(url);
    c.s.write(head);
    await sleep(300);   // (curl waits a second for 100 Continue before it sends the body anyway)
    const first = c.text;
    if (body) {
      c.s.write(body);
      for (let i = 0; i < 100 && !/\r\n\r\n\{.*\}$/s.test(c.text.slice(first.length)); i++) await sleep(20);
    }
    c.s.destroy();
    return { first, rest: c.text.slice(first.length) };
  };
  const auth = 'Authorization: Bearer abcdefghijklmnop0123\r\n';
  const head = (path: string, length: number, extra = auth) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n${extra}\r\n`;
  t.match((await firstBytes(head('/likelihood', 10 << 20))).first, /^HTTP\/1\.1 413 /, 'over BODY_LIMIT by its Content-Length: 413 at once');
  t.match((await firstBytes(head('/likelihood', 1000, ''))).first, /^HTTP\/1\.1 401 /, 'no key: 401 at once');
  t.match((await firstBytes(head('/likelihood', 1000, `${auth}Content-Encoding: br\r\n`))).first, /^HTTP\/1\.1 415 /, 'an encoding not inflated: 415 at once');
  // a multipart form is exempt only where a route reads it part by part (/likelihood); elsewhere it is read whole
  const v2 = head('/v2/models/tiny-c1/infer', 10 << 20).replace('Content-Type: image/png', 'Content-Type: multipart/form-data; boundary=x');
  t.match((await firstBytes(v2)).first, /^HTTP\/1\.1 413 /, 'a multipart body over the limit where it is read whole: 413 at once');
  // HTTP/1.0 has no 100 Continue (RFC 9110, 10.1.1: the expectation is ignored)
  const old = await firstBytes(head('/likelihood?model=tiny-c1', 10).replace('HTTP/1.1', 'HTTP/1.0'), Buffer.alloc(10));
  t.equal(old.first, '', 'HTTP/1.0: nothing before the body');
  t.match(old.rest, /^HTTP\/1\.1 400 /, 'then the answer (10 bytes that are not an image)');
  const png = Buffer.from(await (await fetch(`${url}/sample`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'image/png', authorization: 'Bearer abcdefghijklmnop0123' },
    body: JSON.stringify({ model: 'tiny-c1', seed: 3 }),
  })).arrayBuffer());
  const ok = await firstBytes(head('/likelihood?model=tiny-c1', png.length), png);
  t.equal(ok.first, 'HTTP/1.1 100 Continue\r\n\r\n', 'a request that will be read: 100 Continue');
  t.match(ok.rest, /^HTTP\/1\.1 200 OK\r\n[^]*"bitsPerDim":/, 'then its answer');
});

t.test('the other refusals that close a connection close it the same way: no Host (400), a bad URL after a refusal; and a shutdown does not wait for a lingering connection', async (t) => {
  const { app, url } = await listening({ BODY_LIMIT: 64 * 1024 });
  const body = JSON.stringify({ model: 'tiny-c1', count: 16, seed: 5 });
  const sampleReq = `POST /sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const talk = async (bytes: string, open = false) => {
    const c = await rawClient(url);
    c.s.write(bytes);
    await sleep(500);
    if (open) return c;
    c.s.end();
    await c.closed;
    return c;
  };
  const before = await metricsOf(url);
  // no Host, and a sample pipelined behind it
  const noHost = await talk(`GET /models HTTP/1.1\r\n\r\n${sampleReq}`);
  t.equal(statuses(noHost.text), 'HTTP/1.1 400', 'no Host: one answer, the 400');
  // a refused upload, then a bad URL (the router's own refusal) pipelined behind its body
  const over = `POST /likelihood HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 70000\r\n\r\n${'x'.repeat(70_000)}`;
  const badUrl = await talk(`${over}GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.equal(statuses(badUrl.text), 'HTTP/1.1 413', 'a bad URL behind a refusal: not answered');
  const m = await metricsOf(url);
  t.equal(generated(m) - generated(before), 0, 'the sample behind the 400 was not generated');
  t.equal(metricValue(m, 'spn_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '4xx' }), undefined, 'nor the bad URL counted as answered');
  // a connection lingering after a refusal, a request dropped behind it, its client still there
  const lingeringConn = await talk(`${over}GET /models HTTP/1.1\r\nHost: x\r\n\r\n`, true);
  const started = Date.now();
  await app.shutdown(10_000, 0);
  const took = Date.now() - started;
  t.ok(took < LINGER_MS - 1000, `the shutdown closed it at once (${took} ms; it lingers up to ${LINGER_MS} ms)`);
  lingeringConn.s.destroy();
});
