// API_KEYS: sampling, scoring and the model listing need a bearer key; health, metrics, the docs
// and CORS preflights do not; a refusal comes before the body is read; the OpenAPI document says so.
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { parseKeys } from '../../src/plugins/api-keys.js';
import { listening, metricValue, multipart, rawExchange, rawToPng, readyApp } from './helpers.js';

const KEY_A = 'test-key-aaaaaaaaaaaa';
const KEY_B = 'Tz8+/=_~.-bbbbbbbbbbbbbbbb';
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

t.test('API_KEYS is checked at start-up', async (t) => {
  t.same(parseKeys(` ${KEY_A} , ${KEY_B} `), [KEY_A, KEY_B]);
  t.same(parseKeys(''), []);
  for (const bad of ['short-key', `${KEY_A},`, `${KEY_A} ${KEY_B}`, 'with"quote-aaaaaaaaaaaa', 'x'.repeat(257)]) {
    t.throws(() => loadConfig({ API_KEYS: bad }), /API_KEYS/, `'${bad.slice(0, 30)}' is refused, naming the variable`);
  }
});

t.test('with API_KEYS: the model routes need one of the keys, the rest stay open', async (t) => {
  const app = await readyApp({ API_KEYS: `${KEY_A},${KEY_B}`, CORS_ORIGINS: 'http://page.example' });
  t.teardown(() => app.close());
  const image = (await rawToPng(new Uint8Array(28 * 28).fill(90), 28, 28, 1)).toString('base64');
  const form = multipart({}, { name: 'images', type: 'image/png', bytes: Buffer.from(image, 'base64') });
  type Req = { method: 'GET' | 'HEAD' | 'POST'; url: string; headers?: Record<string, string>; payload?: object | Buffer };
  const calls: Array<[string, Req]> = [
    ['GET /models', { method: 'GET', url: '/models' }],
    ['GET /models/tiny-c1', { method: 'GET', url: '/models/tiny-c1' }],
    ['POST /sample', { method: 'POST', url: '/sample', payload: { seed: 1 } }],
    ['GET /sample', { method: 'GET', url: '/sample?seed=1' }],
    ['HEAD /sample', { method: 'HEAD', url: '/sample?seed=1' }],
    ['POST /likelihood', { method: 'POST', url: '/likelihood', payload: { image } }],
    ['POST /likelihood/batch', { method: 'POST', url: '/likelihood/batch', payload: { images: [image] } }],
    ['POST /likelihood/batch (multipart)', { method: 'POST', url: '/likelihood/batch', headers: form.headers, payload: form.payload }],
  ];
  for (const [what, req] of calls) {
    const none = await app.inject(req);
    t.equal(none.statusCode, 401, `${what} without a key`);
    t.equal(none.headers['www-authenticate'], 'Bearer realm="spn-serve"');
    if (req.method !== 'HEAD') t.same(none.json(), { error: 'an API key is required: send Authorization: Bearer <key>', error_type: 'unauthorized' });
    const wrong = await app.inject({ ...req, headers: { ...req.headers, ...bearer(`${KEY_A}x`) } });
    t.equal(wrong.statusCode, 401, `${what} with a wrong key`);
    t.equal(wrong.headers['www-authenticate'], 'Bearer realm="spn-serve", error="invalid_token"');
    for (const key of [KEY_A, KEY_B]) {
      const ok = await app.inject({ ...req, headers: { ...req.headers, ...bearer(key) } });
      t.equal(ok.statusCode, 200, `${what} with key ${key.slice(0, 6)}...`);
    }
  }
  t.equal((await app.inject({ method: 'GET', url: '/models', headers: { authorization: `bearer   ${KEY_B}` } })).statusCode, 200, 'the scheme in any case');
  t.equal((await app.inject({ method: 'GET', url: '/models', headers: { authorization: `Basic ${KEY_B}` } })).statusCode, 401, 'another scheme');

  for (const url of ['/health/live', '/health/ready', '/metrics', '/docs/json']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} needs no key`);
  }
  const pre = await app.inject({ method: 'OPTIONS', url: '/sample', headers: { origin: 'http://page.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
  t.equal(pre.statusCode, 204, 'a CORS preflight needs no key (browsers send none)');
  t.equal(pre.headers['access-control-allow-headers'], 'authorization, content-type');
  const fromPage = await app.inject({ method: 'POST', url: '/sample', headers: { origin: 'http://page.example' }, payload: {} });
  t.equal(fromPage.statusCode, 401);
  t.equal(fromPage.headers['access-control-allow-origin'], 'http://page.example', 'the page can read why it was refused');

  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.equal(metricValue(text, 'spn_request_failures_total', { route: '/sample', reason: 'unauthorized' }), 5, 'refusals counted per route: POST and GET without a key and with a wrong one, and the page\'s POST (HEAD runs no model: not counted)');
  t.equal(metricValue(text, 'spn_request_failures_total', { route: '/likelihood', reason: 'unauthorized' }), 2);

  // The document: a bearer scheme, and either it or nothing on each protected operation.
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
    components: { securitySchemes: Record<string, { type: string; scheme: string }> };
    paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>;
  };
  t.match(doc.components.securitySchemes.apiKey, { type: 'http', scheme: 'bearer' });
  for (const [path, method] of [['/sample', 'post'], ['/sample', 'get'], ['/likelihood', 'post'], ['/likelihood/batch', 'post'], ['/models', 'get'], ['/models/{name}', 'get']]) {
    t.same(doc.paths[path][method].security, [{ apiKey: [] }, {}], `${method.toUpperCase()} ${path}: a key, or none on a server without keys`);
    t.ok(doc.paths[path][method].responses['401'], `${method.toUpperCase()} ${path} documents 401`);
  }
  t.equal(doc.paths['/metrics'].get.security, undefined);
});

t.test('an unauthenticated upload is refused before its body is read', async (t) => {
  const { app, url } = await listening({ API_KEYS: KEY_A });
  t.teardown(() => app.close());
  // 3 MB announced (under BODY_LIMIT), none sent: the 401 comes at once and the connection closes
  const head = `POST /likelihood/batch HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${3 * 1024 * 1024}\r\n\r\n`;
  const r = await rawExchange(url, [head], { guardMs: 5000 });
  t.match(r.text, /^HTTP\/1\.1 401 /);
  t.match(r.text, /connection: close/i);
  t.ok(r.closed && r.closedAfterMs < 2000, `closed after ${r.closedAfterMs} ms, without waiting for the body`);
  t.equal(r.text.match(/HTTP\/1\.1/g)?.length, 1, 'one answer');
});
