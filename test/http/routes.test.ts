// Routes through app.inject() against the real runtime on the tiny models: health, models,
// metrics, docs, and every refusal of bad input, each with its status and error body.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createRuntime } from '../../src/runtime/index.js';
import type { Runtime, RuntimeOptions } from '../../src/runtime/types.js';
import { buildApp } from '../../src/app.js';
import { metricValue, MODELS_DIR, readyApp, testConfig } from './helpers.js';

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });

t.test('readiness: 503 while the models load, 200 once loaded, 503 again while shutting down', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  // The real createRuntime, held back until the test lets it finish.
  const createRuntimeLater = async (o: RuntimeOptions): Promise<Runtime> => {
    const rt = await createRuntime(o);
    await gate;
    return rt;
  };
  const app = await buildApp(testConfig(), { createRuntime: createRuntimeLater });
  t.teardown(() => app.close());
  await app.ready();

  const live = await app.inject('/health/live');
  t.equal(live.statusCode, 200);
  t.same(live.json(), { status: 'ok' });
  const root = await app.inject('/');
  t.equal(root.statusCode, 302, 'the root sends a browser to the documentation');
  t.equal(root.headers.location, '/docs');
  let ready = await app.inject('/health/ready');
  t.equal(ready.statusCode, 503);
  t.same(ready.json(), { ready: false, status: 'loading' });
  const models = await app.inject('/models');
  t.equal(models.statusCode, 503);
  t.same(models.json(), { error: 'the models are still loading', error_type: 'not_ready' });
  t.equal(models.headers['retry-after'], '5', 'with when to come back');
  // the Open Inference Protocol's readiness: 400 false, as the protocol has it
  const v2ready = await app.inject('/v2/health/ready');
  t.equal(v2ready.statusCode, 400);
  t.same(v2ready.json(), { ready: false });
  const v2model = await app.inject('/v2/models/tiny-c1/ready');
  t.equal(v2model.statusCode, 400);
  t.same(v2model.json(), { name: 'tiny-c1', ready: false });

  release();
  await app.runtimeLoaded();
  ready = await app.inject('/health/ready');
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { ready: true, status: 'ready' });

  app.lifecycle.beginShutdown();
  ready = await app.inject('/health/ready');
  t.equal(ready.statusCode, 503);
  t.same(ready.json(), { ready: false, status: 'shutting_down' });
  t.equal((await app.inject('/health/live')).statusCode, 200, 'still alive while draining');
  const refused = await app.inject({ method: 'POST', url: '/sample', ...json({}) });
  t.equal(refused.statusCode, 503);
  t.same(refused.json(), { error: 'server is shutting down', error_type: 'shutdown' });
  t.equal(refused.headers.connection, 'close');
});

t.test('a model folder that cannot be loaded: readiness says failed, with the reason', async (t) => {
  const app = await buildApp(testConfig({ MODELS_DIR: '/nonexistent/models' }));
  t.teardown(() => app.close());
  await app.ready();
  await t.rejects(app.runtimeLoaded());
  const ready = await app.inject('/health/ready');
  t.equal(ready.statusCode, 503);
  t.equal(ready.json().status, 'failed');
  t.match(ready.json().detail, /nonexistent/);
});

t.test('routes', async (t) => {
  const app = await readyApp({ BODY_LIMIT: 64 * 1024 });
  t.teardown(() => app.close());

  t.test('GET /models lists the loaded models with test bits/dim and provider', async (t) => {
    const res = await app.inject('/models');
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.equal(body.default, 'tiny-c1');
    const names = body.models.map((m: { name: string }) => m.name).sort();
    t.same(names, ['tiny-c1', 'tiny-c3']);
    const c1 = body.models.find((m: { name: string }) => m.name === 'tiny-c1');
    t.equal(c1.default, true);
    t.equal(c1.provider, 'cpu');
    t.same(c1.image, { height: 28, width: 28, channels: 1, channelOrder: ['gray'], bitDepth: 8 });
    t.equal(c1.subscaleFactor, 4);
    t.same(c1.stages.map((s: { name: string }) => s.name), ['small', 'size', 'depth']);
    t.type(c1.testBitsPerDim, 'number');
    t.ok(c1.testBitsPerDim > 0 && c1.testBitsPerDim < 8, `test bits/dim ${c1.testBitsPerDim}`);
    t.ok(c1.parameters > 0);
    t.ok(res.headers['x-request-id'], 'every answer carries its request id');
  });

  t.test('GET /models/:name', async (t) => {
    const c3 = await app.inject('/models/tiny-c3');
    t.equal(c3.statusCode, 200);
    t.equal(c3.json().image.channels, 3);
    t.equal(c3.json().default, false);
    const missing = await app.inject('/models/nope');
    t.equal(missing.statusCode, 404);
    t.same(missing.json(), { error: "unknown model 'nope'", error_type: 'unknown_model' });
    const bad = await app.inject('/models/has%20space');
    t.equal(bad.statusCode, 400);
    t.match(bad.json(), { error: /params\/name must match pattern/, error_type: 'validation' });
  });

  t.test('POST /sample: schema violations are 400 naming the field', async (t) => {
    const cases: Array<[unknown, RegExp]> = [
      [{ count: 17 }, /^body\/count must be <= 16$/],
      [{ count: 0 }, /^body\/count must be >= 1$/],
      [{ count: 1.5 }, /^body\/count must be integer$/],
      [{ temperature: 3 }, /^body\/temperature must be <= 2$/],
      [{ seed: -1 }, /^body\/seed must be >= 0$/],
      [{ seed: 2 ** 32 }, /^body\/seed must be <= 4294967295$/],
      [{ colour: 'red' }, /^body\/colour is not allowed$/],
      [{ model: '../etc' }, /^body\/model must match pattern/],
      [{ condition: { mode: 'paint', image: 'xx' } }, /^body\/condition\/mode must be one of: upscale, add-depth, complete$/],
      [{ condition: { mode: 'complete' } }, /^body\/condition\/image is required$/],
      [[1, 2], /^body must be object$/],
    ];
    for (const [body, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/sample', ...json(body) });
      t.equal(res.statusCode, 400, JSON.stringify(body));
      t.equal(res.json().error_type, 'validation');
      t.match(res.json().error, message);
    }
    const slices = await app.inject({ method: 'POST', url: '/sample', ...json({ condition: { mode: 'complete', image: 'iVBORw0KGgo=' } }) });
    t.equal(slices.statusCode, 400);
    t.same(slices.json(), { error: "body/condition/slices is required when mode is 'complete'", error_type: 'bad_request' });
    const broken = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json' }, payload: '{"count": ' });
    t.equal(broken.statusCode, 400);
    t.equal(broken.json().error_type, 'bad_request');
  });

  t.test('POST /sample: 404, 406, 413, 415, 422', async (t) => {
    const unknown = await app.inject({ method: 'POST', url: '/sample', ...json({ model: 'nope' }) });
    t.equal(unknown.statusCode, 404);
    t.same(unknown.json(), { error: "unknown model 'nope'", error_type: 'unknown_model' });

    const stage = await app.inject({ method: 'POST', url: '/sample', ...json({ stopAfter: 'final' }) });
    t.equal(stage.statusCode, 422);
    t.same(stage.json(), { error: "model 'tiny-c1' has no stage 'final' (stages: small, size, depth)", error_type: 'invalid_input' });

    const notImage = await app.inject({ method: 'POST', url: '/sample', ...json({ condition: { mode: 'add-depth', image: Buffer.from('hello').toString('base64') } }) });
    t.equal(notImage.statusCode, 400);
    t.same(notImage.json(), { error: 'the data is not a PNG, JPEG or WebP image', error_type: 'bad_image' });

    const html = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': 'application/json', accept: 'text/html' }, payload: '{}' });
    t.equal(html.statusCode, 406);
    t.equal(html.json().error_type, 'not_acceptable');

    for (const type of ['text/plain', 'image/png', 'application/xml']) {
      const res = await app.inject({ method: 'POST', url: '/sample', headers: { 'content-type': type }, payload: 'abc' });
      t.equal(res.statusCode, 415, type);
      t.equal(res.json().error_type, 'unsupported_media_type');
    }

    const big = await app.inject({ method: 'POST', url: '/sample', ...json({ condition: { mode: 'add-depth', image: 'A'.repeat(70 * 1024) } }) });
    t.equal(big.statusCode, 413);
    t.equal(big.json().error_type, 'payload_too_large');
  });

  t.test('unknown routes are 404 in the same shape; known paths with another method 405 with Allow', async (t) => {
    const res = await app.inject('/nope?x=1');
    t.equal(res.statusCode, 404);
    t.same(res.json(), { error: 'no route GET /nope', error_type: 'not_found' });
    t.equal((await app.inject('/sample/')).statusCode, 404, 'a trailing slash is another path');
    t.equal((await app.inject('/models/tiny-c1/x')).statusCode, 404, 'a parameter is one path segment');
    for (const [method, url, allow] of [['DELETE', '/sample?seed=1', 'GET, HEAD, POST'], ['PUT', '/models/tiny-c1', 'GET, HEAD'],
      ['POST', '/health/live', 'GET, HEAD'], ['GET', '/likelihood', 'POST'], ['PATCH', '/v2/models/tiny-c1/versions/1/infer', 'POST'],
      ['DELETE', '/docs/static/index.css', 'GET, HEAD']] as const) {
      const r = await app.inject({ method, url });
      t.equal(r.statusCode, 405, `${method} ${url}: 405`);
      t.equal(r.headers.allow, allow, `Allow: ${allow}`);
      t.same(r.json(), { error: `${method} is not allowed on ${url.split('?')[0]}; it takes ${allow}`, error_type: 'method_not_allowed' });
    }
    const head = await app.inject({ method: 'HEAD', url: '/likelihood' });
    t.equal(head.statusCode, 405, 'HEAD where there is no GET');
    t.equal(head.headers.allow, 'POST');
    // the router's own refusals (found by the fuzz test answering Fastify's default body)
    const long = await app.inject({ url: `/models/${'A'.repeat(200)}` });
    t.equal(long.statusCode, 414);
    t.same(long.json(), { error: 'a path parameter is over 100 characters', error_type: 'bad_request' });
    t.ok(long.headers['x-request-id'], 'with its request id');
    const badUrl = await app.inject({ url: '/models/%E0%A4%A' });
    t.equal(badUrl.statusCode, 400);
    t.same(badUrl.json(), { error: 'the URL is not valid (a bad percent-encoding)', error_type: 'bad_request' });
  });

  t.test('GET /metrics: per-app registry with defaults, route templates and failure reasons', async (t) => {
    await app.inject('/models/tiny-c3');
    const res = await app.inject('/metrics');
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /^text\/plain/);
    const text = res.body;
    t.ok(metricValue(text, 'process_cpu_user_seconds_total')! >= 0, 'default process metrics');
    t.ok(metricValue(text, 'spn_http_request_duration_seconds_count', { method: 'GET', route: '/models/:name', status_class: '2xx' })! >= 1);
    t.equal(metricValue(text, 'spn_http_request_duration_seconds_count', { route: '/models/has%20space' }), undefined, 'no raw URLs as labels');
    t.ok(metricValue(text, 'spn_http_request_duration_seconds_count', { route: 'unmatched', status_class: '4xx' })! >= 1);
    // the bad /sample requests above: 11 validation, 2 bad request, then 404, 422, 400, 406, 3 x 415, 413: all bad input
    t.equal(metricValue(text, 'spn_request_failures_total', { route: '/sample', reason: 'bad_input' }), 21);
    t.equal(metricValue(text, 'spn_request_failures_total', { route: '/sample', reason: 'overloaded' }), 0);
    const failureRoutes = [...text.matchAll(/^spn_request_failures_total\{route="([^"]+)",reason="internal"\}/gm)].map((m) => m[1]).sort();
    t.same(failureRoutes, ['/likelihood', '/likelihood/batch', '/sample', '/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer'],
      'failure series for every route that runs models, and only those');
    for (const route of failureRoutes) {
      for (const reason of ['overloaded', 'cancelled', 'timeout', 'bad_input', 'unauthorized', 'unavailable', 'internal']) {
        t.ok(metricValue(text, 'spn_request_failures_total', { route, reason })! >= 0, `a series for ${route} ${reason}`);
      }
    }
    t.equal(metricValue(text, 'spn_request_failures_total', { route: '/likelihood/batch', reason: 'timeout' }), 0, 'zero series for every route and reason');
    t.equal(metricValue(text, 'spn_request_failures_total', { route: '/v2/models/:name/infer', reason: 'bad_input' }), 0);
    t.equal(metricValue(text, 'spn_runtime_failures_total', { reason: 'timeout' }), 0, 'a zero series for the runtime\'s timeouts too');
    t.same([...text.matchAll(/^spn_runtime_failures_total\{reason="([^"]+)"\}/gm)].map((m) => m[1]).sort(), ['bad_input', 'cancelled', 'internal', 'overloaded', 'timeout', 'unavailable'],
      'the runtime\'s series are the reasons it reports');
    for (const name of ['spn_queue_length', 'spn_running_requests', 'spn_batch_size']) t.equal(metricValue(text, name), 0, name);
    t.equal(metricValue(text, 'spn_workers_ready'), 1, 'the one worker is ready');
    t.equal(metricValue(text, 'spn_worker_restarts_total'), 0);
    for (const model of ['tiny-c1', 'tiny-c3']) t.equal(metricValue(text, 'spn_model_info', { model, provider: 'cpu' }), 1, `${model} on cpu`);
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const ort = JSON.parse(readFileSync(new URL('../../../node_modules/onnxruntime-node/package.json', import.meta.url), 'utf8')) as { version: string };
    t.equal(metricValue(text, 'spn_build_info', { version: pkg.version, node: process.versions.node, onnxruntime: ort.version }), 1, 'build info');
    for (const name of ['spn_queue_time_seconds', 'spn_time_to_first_slice_seconds', 'spn_time_between_slices_seconds', 'spn_onnx_run_seconds']) {
      t.match(text, new RegExp(`# TYPE ${name} histogram`), name);
    }
    for (const name of ['spn_samples_generated_total', 'spn_slices_generated_total', 'spn_pixels_generated_total', 'spn_images_scored_total']) {
      t.match(text, new RegExp(`# TYPE ${name} counter`), name);
    }
  });

  t.test('the ONNX run histogram is fed by the runtime, labelled by model, stage and graph', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/sample', ...json({ seed: 1 }) });
    t.equal(res.statusCode, 200);
    const text = (await app.inject('/metrics')).body;
    // one sample_row run per row of each slice (7 rows; slices 1, 15 and 16); the small stage's one
    // slice has a constant context, so conditioning runs only for the other two stages
    for (const [stage, slices] of [['small', 1], ['size', 15], ['depth', 16]] as const) {
      t.equal(metricValue(text, 'spn_onnx_run_seconds_count', { model: 'tiny-c1', stage, graph: 'sample_row' }), slices * 7, `${stage}: sample_row runs`);
    }
    t.equal(metricValue(text, 'spn_onnx_run_seconds_count', { model: 'tiny-c1', stage: 'small', graph: 'conditioning' }), undefined, 'small: no conditioning run');
    t.equal(metricValue(text, 'spn_onnx_run_seconds_count', { model: 'tiny-c1', stage: 'depth', graph: 'conditioning' }), 16, 'depth: one conditioning run per slice');
    t.equal(metricValue(text, 'spn_samples_generated_total', { model: 'tiny-c1' }), 1);
    t.equal(metricValue(text, 'spn_slices_generated_total', { model: 'tiny-c1' }), 32, '1 + 15 + 16 slices');
    t.equal(metricValue(text, 'spn_pixels_generated_total', { model: 'tiny-c1' }), 32 * 49);
    t.equal(metricValue(text, 'spn_queue_time_seconds_count', { model: 'tiny-c1', kind: 'sample' }), 1);
    t.equal(metricValue(text, 'spn_time_between_slices_seconds_count', { model: 'tiny-c1' }), 31);
  });

  t.test('Swagger UI at /docs', async (t) => {
    const ui = await app.inject('/docs/');
    t.equal(ui.statusCode, 200);
    t.match(ui.body, /swagger/i);
    const doc = await app.inject('/docs/json');
    t.equal(doc.statusCode, 200);
    t.ok(doc.json().paths['/sample'].post);
  });
});

t.test('a crashed worker: spn_workers_ready drops and readiness says recovering while it is replaced, spn_worker_restarts_total counts it', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const scrape = async () => (await app.inject('/metrics')).body;
  const pool = (app.runtime as unknown as { pool: { workers: { ready: boolean; post(m: object): void }[] } }).pool;
  pool.workers[0].post({ type: 'crash' });
  let text = await scrape();
  for (let i = 0; i < 100 && metricValue(text, 'spn_worker_restarts_total') === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    text = await scrape();
  }
  t.equal(metricValue(text, 'spn_worker_restarts_total'), 1, 'counted once');
  t.equal(metricValue(text, 'spn_workers_ready'), 0, 'none ready while the replacement loads');
  const recovering = await app.inject('/health/ready');
  t.equal(recovering.statusCode, 503, 'not ready while no worker can take a request');
  t.same(recovering.json(), { ready: false, status: 'recovering' });
  for (let i = 0; i < 500 && metricValue(text, 'spn_workers_ready') === 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    text = await scrape();
  }
  t.equal(metricValue(text, 'spn_workers_ready'), 1, 'the replacement is ready');
  t.same((await app.inject('/health/ready')).json(), { ready: true, status: 'ready' }, 'ready again');
  t.equal((await app.inject({ method: 'POST', url: '/sample', payload: { seed: 1 } })).statusCode, 200, 'and serves');
});

t.test('no worker can take a request (the replacement failed to start): 503 not_ready with Retry-After, counted as unavailable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spn-models-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(MODELS_DIR, 'tiny-c1'), join(dir, 'tiny-c1'), { recursive: true });
  const app = await readyApp({ MODELS_DIR: dir, MODELS: 'tiny-c1' });
  t.teardown(() => app.close());
  const graph = join(dir, 'tiny-c1', 'small', 'sample_row.onnx');
  const good = readFileSync(graph);
  writeFileSync(graph, 'corrupt');
  const pool = (app.runtime as unknown as { pool: { workers: { post(m: object): void }[] } }).pool;
  const victim = pool.workers[0];
  victim.post({ type: 'crash' });
  while (pool.workers.includes(victim)) await new Promise((r) => setTimeout(r, 5));
  const res = await app.inject({ method: 'POST', url: '/sample', payload: { seed: 1 } });
  t.equal(res.statusCode, 503, 'not a 500: the service is unavailable for now');
  t.equal(res.headers['retry-after'], '5');
  t.equal(res.json().error_type, 'not_ready');
  t.match(res.json().error, /^no inference worker is ready: the replacement failed to start \(.*sample_row\.onnx/);
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'spn_runtime_failures_total', { reason: 'unavailable' }), 1);
  t.equal(metricValue(metrics, 'spn_runtime_failures_total', { reason: 'internal' }), 0);
  t.same((await app.inject('/health/ready')).json(), { ready: false, status: 'recovering' });
  writeFileSync(graph, good);
  for (let i = 0; i < 400 && (await app.inject('/health/ready')).statusCode !== 200; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal((await app.inject({ method: 'POST', url: '/sample', payload: { seed: 1 } })).statusCode, 200, 'served again once a retry starts a worker');
});

t.test('MODELS: only the named models are served', async (t) => {
  const app = await readyApp({ MODELS: 'tiny-c3', DEFAULT_MODEL: 'tiny-c3' });
  t.teardown(() => app.close());
  t.same((await app.inject('/models')).json().models.map((m: { name: string }) => m.name), ['tiny-c3']);
  t.equal((await app.inject('/models/tiny-c1')).statusCode, 404);
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'spn_model_info', { model: 'tiny-c1', provider: 'cpu' }), undefined, 'no series for a model not loaded');
});

