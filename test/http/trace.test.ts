// W3C traceparent: which headers are read, and the caller's trace id on every log line of its
// request (the one 'request' line included), none on other requests' lines.
import { Writable } from 'node:stream';
import t from 'tap';
import { traceContext } from '../../src/http/trace.js';
import { readyApp } from './helpers.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

t.test('traceparent: valid ones give the trace and parent ids, others nothing', async (t) => {
  t.same(traceContext(`00-${TRACE}-${PARENT}-01`), { trace_id: TRACE, parent_id: PARENT });
  t.same(traceContext(` 00-${TRACE}-${PARENT}-00 `), { trace_id: TRACE, parent_id: PARENT }, 'not sampled: still the ids');
  t.same(traceContext(`01-${TRACE}-${PARENT}-01-extra`), { trace_id: TRACE, parent_id: PARENT }, 'a later version with more fields, read as version 00');
  for (const bad of [undefined, ['a', 'b'], '', `00-${TRACE}-${PARENT}-01-extra`, `ff-${TRACE}-${PARENT}-01`, `00-${'0'.repeat(32)}-${PARENT}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`, `00-${TRACE.toUpperCase()}-${PARENT}-01`, `00-${TRACE.slice(1)}-${PARENT}-01`, 'garbage']) {
    t.equal(traceContext(bad as string | undefined), undefined, `refused: ${JSON.stringify(bad)}`);
  }
});

t.test("a request's log lines carry its caller's trace id", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const app = await readyApp({}, { logger: { level: 'info', stream } });
  t.teardown(() => app.close());
  const traced = await app.inject({ method: 'POST', url: '/sample', headers: { traceparent: `00-${TRACE}-${PARENT}-01` }, payload: { count: 99 } });
  t.equal(traced.statusCode, 400);
  const plain = await app.inject({ method: 'GET', url: '/models', headers: { traceparent: 'not-a-trace' } });
  t.equal(plain.statusCode, 200);

  const of = (id: string) => lines.filter((l) => l.reqId === id);
  const tracedLines = of(String(traced.headers['x-request-id']));
  t.same(tracedLines.map((l) => l.msg), ['request'], 'one line (a refusal was a second)');
  t.match(tracedLines[0], { status: 400, error: 'body/count must be <= 16', error_type: 'validation' }, 'with the refusal\'s error');
  for (const l of tracedLines) t.match(l, { trace_id: TRACE, parent_id: PARENT });
  const plainLines = of(String(plain.headers['x-request-id']));
  t.equal(plainLines.length, 1);
  t.notOk('trace_id' in plainLines[0], 'an invalid traceparent: no trace id');
  // probes and scrapes are at debug level: no info line each time a probe calls
  const before = lines.length;
  for (const url of ['/health/live', '/health/ready', '/v2/health/ready', '/metrics']) t.equal((await app.inject(url)).statusCode, 200, url);
  t.equal(lines.length, before, 'no info lines for probes and scrapes');
});

t.test('a caller\'s x-request-id is kept when it is a plain token, replaced otherwise', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const id = async (headers: Record<string, string | string[]>) => (await app.inject({ method: 'GET', url: '/health/live', headers })).headers['x-request-id'];
  t.equal(await id({ 'x-request-id': 'lb-7f3a:42' }), 'lb-7f3a:42', 'a proxy\'s id, kept');
  t.match(await id({}), /^[0-9a-f-]{36}$/, 'none: a fresh one');
  for (const bad of ['a'.repeat(3000), 'a b', 'id\u00e9', '']) t.match(await id({ 'x-request-id': bad }), /^[0-9a-f-]{36}$/, `replaced: ${JSON.stringify(bad.slice(0, 20))}`);
  t.match(await id({ 'x-request-id': ['a', 'b'] }), /^[0-9a-f-]{36}$/, 'two headers (joined into \'a, b\'): replaced');
});
