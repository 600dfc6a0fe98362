// The compiled server as a child process: SIGTERM in the middle of a stream. It stops accepting,
// lets the stream finish within SHUTDOWN_GRACE_MS (or ends it with an in-band error after it),
// and exits 0. Its logs are pino JSON lines carrying request ids.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { MODELS_DIR, ROOT, readSse, sleep } from './helpers.js';
import { CUDA_HERE } from '../runtime/helpers.js';

interface Server {
  child: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  /** what the server wrote to stderr (also passed on to ours) */
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, [`${ROOT}dist/src/server.js`], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS_DIR, DEFAULT_MODEL: 'tiny-c1', EXECUTION_PROVIDER: 'cpu', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    process.stderr.write(d);
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const logs: Array<Record<string, unknown>> = [];
  let resolveUrl!: (u: string) => void;
  const listening = new Promise<string>((r) => (resolveUrl = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const entry = JSON.parse(line) as Record<string, unknown>; // throws (fails the test) on a non-JSON line
    logs.push(entry);
    const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(entry.msg));
    if (m) resolveUrl(m[1]);
  });
  const url = await Promise.race([listening, exited.then((code) => Promise.reject(new Error(`server exited early with ${code}`)))]);
  for (let i = 0; i < 200 && (await fetch(`${url}/health/ready`)).status !== 200; i++) await sleep(50);
  return { child, url, logs, stderr: () => stderr, exited };
}

function streamThenTerm(server: Server) {
  return fetch(`${server.url}/sample`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ model: 'tiny-c3', count: 16, seed: 9 }),
  }).then((res) =>
    readSse(res.body!, (ev) => {
      if (ev.event === 'slice' && !server.child.killed) server.child.kill('SIGTERM');
    }),
  );
}

t.test('SIGTERM mid-stream with time to spare: the stream finishes, new connections are refused, exit 0', async (t) => {
  const server = await startServer({ SHUTDOWN_GRACE_MS: '20000' });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const reading = streamThenTerm(server);
  while (!server.child.killed) await sleep(5);
  await sleep(100);
  await t.rejects(fetch(`${server.url}/health/live`), 'no new connections once draining');
  const { events } = await reading;
  t.equal(events.at(-1)!.event, 'done', 'the running stream completed');
  t.equal(JSON.parse(events.at(-1)!.data).images.length, 16);
  t.equal(await server.exited, 0);
  const shut = server.logs.find((l) => l.msg === 'shut down');
  t.same(shut && shut.aborted, 0);
  // one line per answered request, with its id, method, URL, status and duration
  const requestLogs = server.logs.filter((l) => l.msg === 'request');
  t.ok(requestLogs.length >= 2);
  for (const l of requestLogs) t.match(l, { reqId: /^[0-9a-f-]{36}$/, method: /^(GET|POST)$/, url: /^\//, status: Number, ms: Number }, 'id, method, URL, status and time on every request log');
  t.ok(requestLogs.some((l) => l.url === '/sample' && l.status === 200), 'the stream that completed is logged');
  t.equal(server.logs.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed').length, 0, 'not two lines per request');
});

t.test('SIGTERM mid-stream with a short grace period: in-band shutdown error, exit 0', async (t) => {
  // The stream must outlast the grace period: 16 images of tiny-c3 take 110-180 ms in row mode
  // (too close to a grace of 100 ms once PNG encoding got cheap), 230-320 ms one run per pixel.
  const server = await startServer({ SHUTDOWN_GRACE_MS: '20', DECODE: 'pixel' });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const { events } = await streamThenTerm(server);
  const last = events.at(-1)!;
  t.equal(last.event, 'error');
  t.same(JSON.parse(last.data), { error: 'server is shutting down', error_type: 'shutdown' });
  t.notOk(events.some((e) => e.event === 'done'));
  t.equal(await server.exited, 0);
  t.same(server.logs.find((l) => l.msg === 'shut down')?.aborted, 1);
});

t.test('SIGTERM with connections that sent no request, half a request, a stalled body, or are kept alive: all closed, exit 0', async (t) => {
  // Node's closeIdleConnections() leaves the first two open, and server.close() then waited for
  // them until the last-resort timer (exit 1 after the grace + 15 s).
  const server = await startServer({ SHUTDOWN_GRACE_MS: '200' });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const port = Number(new URL(server.url).port);
  const open = async (): Promise<Socket> => {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    return s;
  };
  const silent = await open();
  const partial = await open();
  partial.write('POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n');
  // its headers whole, its body stalled: it held the exit to the last-resort timer (exit 1)
  const stalled = await open();
  stalled.write('POST /sample HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"seed"');
  const kept = await open();
  kept.write('GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const [answer] = (await once(kept, 'data')) as [Buffer];
  t.match(answer.toString(), /^HTTP\/1\.1 200/, 'the kept-alive connection was answered');
  const closed = [silent, partial, stalled, kept].map((s) => {
    s.on('error', () => {}); // a reset is a close too
    return once(s, 'close');
  });
  await sleep(100); // the partial request's bytes have arrived
  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, 'shut down without waiting for them');
  await Promise.all(closed);
  t.same(server.logs.find((l) => l.msg === 'shut down')?.aborted, 0);
  t.notOk(server.logs.some((l) => l.msg === 'shutdown did not finish in time; exiting'));
});

t.test('a second SIGTERM does not cut the drain short: the running requests finish, exit 0', async (t) => {
  // the handlers were once-only, so the second signal got Node's default action: killed at once
  const server = await startServer({ SHUTDOWN_GRACE_MS: '20000', DECODE: 'pixel' });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const running = Array.from({ length: 3 }, (_, i) => fetch(`${server.url}/sample`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny-c3', count: 16, seed: i }),
  }).then((r) => r.status));
  await sleep(50);
  server.child.kill('SIGTERM');
  await sleep(20);
  server.child.kill('SIGTERM');
  t.same(await Promise.all(running), [200, 200, 200], 'every running request answered');
  t.equal(await server.exited, 0);
  t.ok(server.logs.some((l) => l.msg === 'already shutting down; running requests keep their grace period' && l.signal === 'SIGTERM'), 'the second signal is logged');
});

t.test('SHUTDOWN_DELAY_MS: the port stays open, readiness 503 and new model work 503, then it closes', async (t) => {
  const server = await startServer({ SHUTDOWN_DELAY_MS: '1500', SHUTDOWN_GRACE_MS: '1000' });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const termAt = Date.now();
  server.child.kill('SIGTERM');
  await sleep(200);
  const ready = await fetch(`${server.url}/health/ready`);
  t.equal(ready.status, 503, 'not ready, and still answering');
  t.same(await ready.json(), { ready: false, status: 'shutting_down' });
  const refused = await fetch(`${server.url}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(refused.status, 503);
  t.same(await refused.json(), { error: 'server is shutting down', error_type: 'shutdown' });
  t.equal((await fetch(`${server.url}/health/live`)).status, 200, 'alive');
  t.equal(await server.exited, 0);
  t.ok(Date.now() - termAt >= 1500, `exited after the delay (${Date.now() - termAt} ms)`);
  t.match(server.logs.find((l) => l.msg === 'shutting down'), { delayMs: 1500, graceMs: 1000 });
});

t.test('EXECUTION_PROVIDER=auto without CUDA: one JSON warning per model, no native error output', async (t) => {
  const server = await startServer({ EXECUTION_PROVIDER: 'auto', WORKERS: '2' });
  t.teardown(() => void server.child.kill('SIGKILL'));
  const models = (await (await fetch(`${server.url}/models`)).json()) as { models: Array<{ name: string; provider: string }> };
  if (CUDA_HERE) {
    t.same(models.models.map((m) => m.provider), models.models.map(() => 'cuda'), 'CUDA is here: every model on it');
  } else {
    const warnings = server.logs.filter((l) => /CUDA execution provider unavailable, running on CPU/.test(String(l.msg)));
    t.equal(warnings.length, models.models.length, 'the fallback and its cause, once per model (not once per worker), as JSON log lines');
    t.same(new Set(warnings.map((l) => String(l.msg).split(':')[0])), new Set(models.models.map((m) => m.name)), 'one for each model');
    t.equal(server.stderr(), '', 'nothing on stderr (onnxruntime wrote a colored multi-line error per graph there)');
  }
  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0);
});

/** The server started with env, run until it exits by itself: its exit code, JSON log lines and stderr. */
type Logs = Array<Record<string, unknown>>;
/** Runs the server until it exits by itself, or after `act` (given the process and its log lines
 * so far) has done something to it, such as signal it; `nodeArgs` go before the script. */
async function runToExit(env: Record<string, string>, act?: (child: ChildProcess, logs: Logs) => Promise<void>, nodeArgs: string[] = []):
  Promise<{ code: number | null; signal: NodeJS.Signals | null; logs: Logs; stderr: string }> {
  const child = spawn(process.execPath, [...nodeArgs, `${ROOT}dist/src/server.js`], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS_DIR, DEFAULT_MODEL: 'tiny-c1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const logs: Logs = [];
  createInterface({ input: child.stdout! }).on('line', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  if (act) await Promise.race([act(child, logs), exited]);
  const [code, signal] = await exited;
  clearTimeout(timer);
  await sleep(50);   // the last lines
  return { code, signal, logs, stderr };
}

t.test('SIGTERM while the models load: the load stops (it is not waited for), exit 0', async (t) => {
  // every model on 8 workers: seconds of loading on two cores, and on CUDA it can take minutes; the
  // shutdown used to wait for all of it, and past its 15 s backstop exited with a native abort
  let ready: { status: number; body: unknown } | undefined;
  const run = await runToExit({ MODELS: '', WORKERS: '8', EXECUTION_PROVIDER: 'cpu' }, async (child, logs) => {
    let url: string | undefined;
    while (!(url = logs.map((l) => /Server listening at (http:\S+)/.exec(String(l.msg))?.[1]).find(Boolean))) await sleep(10);
    const res = await fetch(`${url}/health/ready`);
    ready = { status: res.status, body: await res.json() };
    child.kill('SIGTERM');
  });
  t.match(ready, { status: 503, body: { status: 'loading' } }, 'signalled while loading');
  t.equal(run.code, 0);
  t.ok(run.logs.some((l) => l.msg === 'model loading stopped: the server is closing'), 'the load was stopped');
  t.notOk(run.logs.some((l) => l.msg === 'models loaded'), 'and did not run to its end');
  t.notOk(run.logs.some((l) => l.msg === 'models failed to load; exiting'), 'a stopped load is not a failure');
  t.match(run.logs.find((l) => l.msg === 'shut down'), { aborted: 0 });
  t.equal(run.stderr, '');
});

t.test('SIGTERM before the server listens: exit 0, said on stderr (Node\'s default action killed it, unlogged)', async (t) => {
  // a module-resolution hook holds the server's import of its app (the bulk of its start-up) for
  // a few seconds, and says so in a file; the signal is sent then
  const dir = mkdtempSync(join(tmpdir(), 'spn-early-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'holding');
  writeFileSync(join(dir, 'hooks.mjs'), `import { writeFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (specifier === './app.js' && context.parentURL?.endsWith('/dist/src/server.js')) {
    writeFileSync(${JSON.stringify(marker)}, '');
    await new Promise((r) => setTimeout(r, 3000));
  }
  return next(specifier, context);
}
`);
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  const run = await runToExit({ MODELS: 'tiny-c1', WORKERS: '1' }, async (child) => {
    while (!existsSync(marker)) await sleep(5);
    child.kill('SIGTERM');
  }, ['--import', join(dir, 'register.mjs')]);
  t.same([run.code, run.signal], [0, null], 'exit 0, not killed by the signal');
  // Node 20 handles the signal while the import is held, and the process has not listened; Node 26
  // resolves the held import before its event loop turns again, and handles it as a shutdown
  if (run.logs.length) t.match(run.logs.at(-1), { msg: 'shut down', aborted: 0 }, 'or it shut down as it does once listening');
  else t.match(run.stderr, /^spn-serve: SIGTERM while starting, before listening; exiting\n$/, 'said on stderr, before listening');
});

t.test('models that cannot load: exit 1 with the cause once; no native error output with cuda; said on stderr when the logs are silent', async (t) => {
  // (where CUDA is here the server would run: 'auto' above checks that it does, on CUDA)
  if (!CUDA_HERE) {
    const cuda = await runToExit({ EXECUTION_PROVIDER: 'cuda', MODELS: 'tiny-c1' });
    t.equal(cuda.code, 1);
    t.equal(cuda.stderr, '', 'nothing on stderr (onnxruntime printed its colored native error twice)');
    const withStack = cuda.logs.filter((l) => (l.err as { stack?: string } | undefined)?.stack);
    t.equal(withStack.length, 1, 'the cause, with its stack, logged once (it was twice)');
    t.match(String((withStack[0].err as { message: string }).message), /CUDA execution provider failed/);
    t.match(cuda.logs.find((l) => l.msg === 'models failed to load; exiting'), { level: 60, cause: /CUDA execution provider failed/ });
  }
  const silent = await runToExit({ LOG_LEVEL: 'silent', MODELS_DIR: join(ROOT, 'nowhere') });
  t.equal(silent.code, 1);
  t.same(silent.logs, [], 'no log lines');
  t.match(silent.stderr, /^spn-serve: models failed to load: .*nowhere/, 'but the cause, on stderr');
});

t.test('app.close() does not wait for connections with no answer in progress (a preconnect held a browser test\'s close for 30 s)', async (t) => {
  const { listening } = await import('./helpers.js');
  const { app, url } = await listening({ RECEIVE_TIMEOUT_MS: 60_000 });
  const { port } = new URL(url);
  // connected and silent (a browser's preconnect), and half a request's headers
  const sockets = await Promise.all(['', 'GET /health/live HTTP/1.1\r\nHo'].map(async (bytes) => {
    const s = connect(Number(port), '127.0.0.1');
    await once(s, 'connect');
    if (bytes) s.write(bytes);
    s.on('error', () => {});
    return s;
  }));
  await sleep(100);
  const started = Date.now();
  const closed = app.close().then(() => Date.now() - started);
  const took = await Promise.race([closed, sleep(10_000).then(() => undefined)]);
  t.ok(took !== undefined && took < 5_000, `closed in ${took ?? 'more than 10,000'} ms (Node's headersTimeout here is 60 s)`);
  for (const s of sockets) s.destroy();   // (so that a close that waited for them ends)
  await closed;
});
