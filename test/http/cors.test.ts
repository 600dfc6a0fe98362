// CORS_ORIGINS: the headers on every kind of answer, preflights, the configuration's checks, and
// in a real browser (Debian's Chromium) a page on an allowed origin calling the API with fetch and
// EventSource while a page on another origin cannot read it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { launchChromium } from './browser.js';
import { loadConfig } from '../../src/config.js';
import { parseOrigins } from '../../src/plugins/cors.js';
import { listening, metricValue, parseSse, rawToPng, readyApp } from './helpers.js';

const PAGE = 'http://page.example';
const OTHER = 'http://other.example:8081';

t.test('CORS_ORIGINS: checked at start-up and read as browsers send origins', async (t) => {
  t.equal(parseOrigins(''), null, 'empty: CORS off');
  t.equal(parseOrigins(' * '), '*');
  t.same([...(parseOrigins('HTTP://Page.Example:80, https://a.example:8443') as Set<string>)], ['http://page.example', 'https://a.example:8443'],
    'scheme and host lower case, a default port left out');
  for (const bad of ['ftp://x.example', 'http://a.example/path', 'page.example', 'http://a.example,*', 'http://a b']) {
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), /CORS_ORIGINS/, `'${bad}' is refused, naming the variable`);
  }
  t.equal(loadConfig({ CORS_ORIGINS: `${PAGE}, ${OTHER}` }).CORS_ORIGINS, `${PAGE}, ${OTHER}`);
});

t.test('off by default: no CORS headers, and a preflight is 405 (the path takes POST only)', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/models', headers: { origin: PAGE } });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['access-control-allow-origin'], undefined);
  t.equal(res.headers.vary, undefined);
  const pre = await app.inject({ method: 'OPTIONS', url: '/likelihood', headers: { origin: PAGE, 'access-control-request-method': 'POST' } });
  t.equal(pre.statusCode, 405);
  t.equal(pre.headers.allow, 'POST');
  t.equal(pre.headers['access-control-allow-origin'], undefined);
});

t.test('a list of origins: allowed ones may read every kind of answer, others are served unreadable', async (t) => {
  const app = await readyApp({ CORS_ORIGINS: `${PAGE},HTTP://Other.Example:8081` });
  t.teardown(() => app.close());
  const allowedHeaders = (res: { headers: Record<string, unknown> }, origin: string, what: string) => {
    t.equal(res.headers['access-control-allow-origin'], origin, `${what}: Access-Control-Allow-Origin`);
    t.match(String(res.headers['access-control-expose-headers']), /x-request-id.*x-seed.*etag.*retry-after/, `${what}: exposed headers`);
    t.match(String(res.headers.vary), /\bOrigin\b/, `${what}: Vary: Origin`);
  };

  allowedHeaders(await app.inject({ method: 'GET', url: '/models', headers: { origin: PAGE } }), PAGE, 'GET /models');
  allowedHeaders(await app.inject({ method: 'GET', url: '/health/ready', headers: { origin: OTHER } }), OTHER, 'an origin written in another case and with its port');

  const evil = await app.inject({ method: 'GET', url: '/models', headers: { origin: 'http://evil.example' } });
  t.equal(evil.statusCode, 200, 'a request from another origin is still served (CORS guards reading, not sending)');
  t.equal(evil.headers['access-control-allow-origin'], undefined, '... without the header, so its page cannot read it');
  t.match(String(evil.headers.vary), /\bOrigin\b/, 'the answer varies by Origin for caches');
  const none = await app.inject({ method: 'GET', url: '/models' });
  t.equal(none.headers['access-control-allow-origin'], undefined, 'no Origin (curl): no CORS header');

  // errors and refusals carry it too, or a page could not read why it was refused
  const bad = await app.inject({ method: 'POST', url: '/sample', headers: { origin: PAGE }, payload: { count: 99 } });
  t.equal(bad.statusCode, 400);
  allowedHeaders(bad, PAGE, 'a 400');
  const missing = await app.inject({ method: 'GET', url: '/nowhere', headers: { origin: PAGE } });
  t.equal(missing.statusCode, 404);
  t.equal(missing.headers['cache-control'], 'no-store', 'a 404 is not cached');
  allowedHeaders(missing, PAGE, 'a 404');
  // the router's own refusals, which no hook sees (found by probing: they had no CORS headers)
  const badUrl = await app.inject({ method: 'GET', url: '/models/%ZZ', headers: { origin: PAGE } });
  t.equal(badUrl.statusCode, 400);
  allowedHeaders(badUrl, PAGE, 'a bad percent-encoding');
  const longParam = await app.inject({ method: 'GET', url: `/models/${'a'.repeat(101)}`, headers: { origin: PAGE } });
  t.equal(longParam.statusCode, 414);
  allowedHeaders(longParam, PAGE, 'a path parameter over 100 characters');
  const routerRefusals = metricValue((await app.inject('/metrics')).body, 'spn_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '4xx' });
  t.ok(routerRefusals! >= 3, `and they are in the request duration metric with the 404 (${routerRefusals})`);

  // a seeded PNG: Vary keeps Accept (the ETag depends on it) beside Origin
  const png = await app.inject({ method: 'GET', url: '/sample?seed=5', headers: { origin: PAGE, accept: 'image/png' } });
  t.equal(png.statusCode, 200);
  allowedHeaders(png, PAGE, 'a seeded PNG');
  t.same(String(png.headers.vary).split(',').map((s) => s.trim()).sort(), ['Accept', 'Origin']);
  t.ok(png.headers.etag && png.headers['x-seed'] === '5');

  const stream = await app.inject({ method: 'GET', url: '/sample?seed=5', headers: { origin: PAGE, accept: 'text/event-stream' } });
  allowedHeaders(stream, PAGE, 'an event stream');
  t.equal(parseSse(stream.body).at(-1)?.event, 'done');

  // last, since it is for good: model work refused while shutting down (found by probing: the
  // refusal came from a hook that ran before the CORS one, and had no CORS headers)
  app.lifecycle.beginShutdown();
  const draining = await app.inject({ method: 'POST', url: '/sample', headers: { origin: PAGE }, payload: { seed: 1 } });
  t.equal(draining.statusCode, 503);
  t.equal(draining.json().error_type, 'shutdown');
  allowedHeaders(draining, PAGE, 'a 503 while shutting down');
});

t.test('preflights: an allowed origin may POST JSON with its headers; another is refused', async (t) => {
  const app = await readyApp({ CORS_ORIGINS: PAGE });
  t.teardown(() => app.close());
  const pre = await app.inject({
    method: 'OPTIONS', url: '/likelihood',
    headers: { origin: PAGE, 'access-control-request-method': 'POST', 'access-control-request-headers': 'Content-Type, X-Request-Id' },
  });
  t.equal(pre.statusCode, 204);
  t.equal(pre.headers['access-control-allow-origin'], PAGE);
  t.equal(pre.headers['access-control-allow-methods'], 'GET, HEAD, POST');
  t.equal(pre.headers['access-control-allow-headers'], 'content-type, x-request-id');
  t.equal(pre.headers['access-control-max-age'], '600');
  t.same(String(pre.headers.vary).split(',').map((s) => s.trim()).sort(), ['Access-Control-Request-Headers', 'Origin']);
  t.equal(pre.body, '');

  const refused = await app.inject({ method: 'OPTIONS', url: '/sample', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
  t.equal(refused.statusCode, 403);
  t.same(refused.json(), { error: 'origin http://evil.example may not call this API from a browser (CORS_ORIGINS)', error_type: 'forbidden_origin' });
  t.equal(refused.headers['access-control-allow-origin'], undefined);

  const plain = await app.inject({ method: 'OPTIONS', url: '/sample' });
  t.equal(plain.statusCode, 204, 'OPTIONS that is not a preflight: the methods');
  t.equal(plain.headers.allow, 'GET, HEAD, POST, OPTIONS');
});

t.test('* lets any origin read, with no Vary', async (t) => {
  const app = await readyApp({ CORS_ORIGINS: '*' });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/models', headers: { origin: 'http://anywhere.example' } });
  t.equal(res.headers['access-control-allow-origin'], '*');
  t.equal(res.headers.vary, undefined);
  const pre = await app.inject({ method: 'OPTIONS', url: '/likelihood', headers: { origin: 'null', 'access-control-request-method': 'POST' } });
  t.equal(pre.statusCode, 204, 'even an opaque origin (a sandboxed frame)');
  t.equal(pre.headers['access-control-allow-origin'], '*');
});

/** A page server: answers an empty HTML page at any path; its origin is http://127.0.0.1:port. */
async function pageServer(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>page</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

t.test('in Chromium: a page on an allowed origin calls the API; a page on another cannot read it', { timeout: 60_000 }, async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  const allowed = await pageServer();
  const other = await pageServer();
  t.teardown(allowed.close);
  t.teardown(other.close);
  const { app, url: api } = await listening({ CORS_ORIGINS: allowed.origin });
  t.teardown(() => app.close());
  const image = (await rawToPng(Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 7) % 256), 28, 28, 1)).toString('base64');
  const { timings: _, ...expected } = (await app.inject({ method: 'POST', url: '/likelihood', payload: { image } })).json() as Record<string, unknown>;

  // What a page's own script can do with the API, run on each origin's page.
  const calls = async (pageOrigin: string) => {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${pageOrigin}/`);
    const got = await page.evaluate(async ({ api, image }) => {
      const attempt = async <T>(f: () => Promise<T>): Promise<T | string> => f().catch((e: Error) => `${e.name}: ${e.message}`);
      // a JSON POST: preflighted, then read, with an exposed header
      const likelihood = await attempt(async () => {
        const res = await fetch(`${api}/likelihood`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'page-1' }, body: JSON.stringify({ image }) });
        const { timings: _, ...body } = await res.json() as Record<string, unknown>;
        return { status: res.status, requestId: res.headers.get('x-request-id'), body };
      });
      // a seeded PNG: its ETag is readable
      const png = await attempt(async () => {
        const res = await fetch(`${api}/sample?seed=4`, { headers: { accept: 'image/png' } });
        return { status: res.status, etag: res.headers.get('etag'), bytes: (await res.arrayBuffer()).byteLength };
      });
      // a refusal's body is readable too
      const refused = await attempt(async () => {
        const res = await fetch(`${api}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: 99 }) });
        return { status: res.status, body: await res.json() as { error_type: string } };
      });
      const stream = await new Promise<{ slices: number; seed: number | null; failed: boolean }>((resolve) => {
        const source = new EventSource(`${api}/sample?seed=9&count=1`);
        let slices = 0;
        source.addEventListener('slice', () => { slices++; });
        source.addEventListener('done', (e) => { source.close(); resolve({ slices, seed: JSON.parse((e as MessageEvent).data).seed, failed: false }); });
        source.onerror = () => { source.close(); resolve({ slices, seed: null, failed: true }); };
      });
      return { likelihood, png, refused, stream };
    }, { api, image });
    await page.close();
    return got;
  };

  const ok = await calls(allowed.origin);
  t.same(ok.likelihood, { status: 200, requestId: 'page-1', body: expected }, 'the allowed page reads the score (all but timings as the server scores it alone) and its request id');
  t.match(ok.png, { status: 200, etag: /^"[0-9a-f]{32}"$/ });
  t.ok(typeof ok.png === 'object' && ok.png.bytes > 100, 'the PNG bytes');
  t.match(ok.refused, { status: 400, body: { error_type: 'validation', error: /count/ } }, 'a refusal is readable, and why');
  t.equal(ok.stream.failed, false, 'EventSource across origins');
  t.equal(ok.stream.seed, 9);
  t.ok(ok.stream.slices > 0, `${ok.stream.slices} slice events`);

  const blocked = await calls(other.origin);
  t.match(blocked.likelihood, /^TypeError: Failed to fetch/, 'the other page: its preflight is refused, the POST is never sent');
  t.match(blocked.png, /^TypeError: Failed to fetch/, 'the other page cannot read a GET answer');
  t.match(blocked.refused, /^TypeError: Failed to fetch/);
  t.same(blocked.stream, { slices: 0, seed: null, failed: true }, 'nor an event stream');
});
