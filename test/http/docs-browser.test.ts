// Swagger UI in a real browser (Debian's Chromium, driven by playwright-core; no browser is ever
// downloaded): the page renders the generated document, lists the operations, and its "Try it out"
// calls the real server and shows the answer.
import t, { type Test } from 'tap';
import { cuttingProxy, launchChromium, WAIT } from './browser.js';
import { join } from 'node:path';
import { listening, metricValue, parseSse, ROOT } from './helpers.js';

/** Swagger UI at /docs of a server started with `env`, and a locator for one of its operations;
 * null where there is no browser (launchChromium has failed the test). */
async function swaggerUi(t: Test, env: Record<string, string | number> = {}) {
  const browser = await launchChromium(t);
  if (!browser) return null;
  const { app, url } = await listening(env);
  t.teardown(() => app.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const res = await page.goto(`${url}/docs`, { waitUntil: 'load' });
  const operation = (method: string, path: string) =>
    page.locator(`.opblock.opblock-${method}`).filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
  return { app, page, status: res?.status(), operation };
}

t.test('Swagger UI at /docs lists the operations and runs GET /models against the server', { timeout: 60_000 }, async (t) => {
  const ui = await swaggerUi(t);
  if (!ui) return;
  const { app, page, operation } = ui;
  t.equal(ui.status, 200);
  // The document is fetched by the UI after load: the title heading appears once it has rendered.
  const title = page.locator('.swagger-ui .info .title');
  await title.waitFor(WAIT);
  t.match(await title.innerText(), /^spn-serve\b/);

  for (const [method, path] of [['post', '/sample'], ['post', '/likelihood'], ['get', '/models'], ['get', '/metrics'], ['get', '/health/ready']]) {
    const op = operation(method, path);
    await op.first().waitFor(WAIT);
    t.equal(await op.count(), 1, `${method.toUpperCase()} ${path} is listed once`);
    t.equal((await op.locator('.opblock-summary-method').innerText()).trim(), method.toUpperCase());
  }

  // Use the UI itself: expand GET /models, "Try it out", "Execute", read the rendered answer.
  const models = operation('get', '/models');
  await models.locator('.opblock-summary').first().click();
  await models.locator('button.try-out__btn').click();
  await models.locator('button.execute').click();
  const live = models.locator('.live-responses-table');
  await live.waitFor(WAIT);
  const status = live.locator('tbody .response-col_status').first();
  await status.waitFor(WAIT);
  t.equal((await status.innerText()).trim(), '200');
  const body = live.locator('tbody .response-col_description pre').first();
  await body.waitFor(WAIT);
  const text = await body.innerText();
  const shown = JSON.parse(text) as { default: string; models: Array<{ name: string }> };
  t.equal(shown.default, 'tiny-c1');
  t.same(shown.models.map((m) => m.name).sort(), ['tiny-c1', 'tiny-c3']);
  t.match(text, /"name": "tiny-c1"/);

  // A page's own code can follow a sample slice by slice with the browser's EventSource (GET only).
  const seen = await page.evaluate(() => new Promise<{ slices: number; done: { seed: number; images: unknown[] } | null; error: string | null }>((resolve) => {
    const source = new EventSource('/sample?seed=11&count=2');
    let slices = 0;
    source.addEventListener('slice', () => { slices++; });
    source.addEventListener('done', (e) => {
      source.close();
      resolve({ slices, done: JSON.parse((e as MessageEvent).data), error: null });
    });
    source.onerror = () => {
      source.close();
      resolve({ slices, done: null, error: 'the event source failed' });
    };
  }));
  t.equal(seen.error, null);
  const sent = await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'text/event-stream' }, payload: { seed: 11, count: 2 } });
  const slices = parseSse(sent.body).filter((e) => e.event === 'slice').length;
  t.ok(slices >= 2, `${slices} slice events for two samples`);
  t.equal(seen.slices, slices, 'the browser receives every slice event, as the server streams them');
  t.equal(seen.done?.seed, 11);
  t.equal(seen.done?.images.length, 2);

  // A page that does not close its EventSource after done: the browser reconnects (after the
  // stream's retry, 1 s), sends Last-Event-ID: end, gets 204 and stops; the model ran once.
  const gets = async () => metricValue((await app.inject('/metrics')).body, 'spn_http_request_duration_seconds_count', { method: 'GET', route: '/sample', status_class: '2xx' }) ?? 0;
  const before = await gets();
  const left = await page.evaluate(() => new Promise<{ log: string[]; state: number }>((resolve) => {
    const source = new EventSource('/sample?seed=12');
    const log: string[] = [];
    source.addEventListener('done', (e) => log.push(`done ${(e as MessageEvent).lastEventId}`));
    source.onerror = () => {
      log.push(`error ${source.readyState}`);
      if (source.readyState === EventSource.CLOSED) resolve({ log, state: source.readyState });
    };
    setTimeout(() => resolve({ log, state: source.readyState }), 12_000);
  }));
  t.same(left.log, ['done end', 'error 0', 'error 2'], 'done (id end), the end of the stream (reconnecting), then the 204 (closed)');
  t.equal(left.state, 2, 'the EventSource is closed: it will not reconnect');
  await new Promise((r) => setTimeout(r, 4_000));
  t.equal(await gets() - before, 2, 'two GETs in all (the stream, then the 204), none after');
});

t.test('an EventSource whose connection drops mid-stream reconnects and gets the rest of the same stream', { timeout: 60_000 }, async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  const { app, url } = await listening();
  t.teardown(() => app.close());
  // a proxy that cuts the stream after its third event, once the page has handled it
  const KEEP = 3;
  let dispatched = 0;
  const proxy = await cuttingProxy(t, url, { request: /^GET \/sample\?/, keep: KEEP, dispatched: () => dispatched });
  const proxied = proxy.url;

  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  await page.exposeFunction('dispatched', (n: number) => { dispatched = n; });
  await page.goto(`${proxied}/health/live`);
  // no seed in the query: the server draws one, and the event ids carry it
  const seen = await page.evaluate(() => new Promise<{ log: string[]; done: { seed: number; images: Array<{ png: string }> } | null }>((resolve) => {
    const source = new EventSource('/sample?count=2');
    const log: string[] = [];
    const report = (window as unknown as { dispatched: (n: number) => void }).dispatched;
    for (const type of ['slice', 'stage']) {
      source.addEventListener(type, (e) => {
        log.push(`${type} ${(e as MessageEvent).lastEventId}`);
        report(log.filter((l) => !l.startsWith('error')).length);
      });
    }
    source.addEventListener('done', (e) => {
      source.close();
      resolve({ log, done: JSON.parse((e as MessageEvent).data) });
    });
    source.onerror = () => log.push(`error ${source.readyState}`);
    setTimeout(() => { source.close(); resolve({ log, done: null }); }, 20_000);
  }));
  t.ok(proxy.cut(), 'the proxy cut the first stream');
  t.ok(seen.done, 'the stream reached done');
  const seed = seen.done!.seed;
  const direct = parseSse((await app.inject({ method: 'GET', url: `/sample?count=2&seed=${seed}`, headers: { accept: 'text/event-stream' } })).body);
  const want = direct.filter((e) => e.event !== 'done').map((e) => `${e.event} ${e.id}`);
  t.equal(seen.log.indexOf('error 0'), KEEP, `the drop came after ${KEEP} events`);
  t.equal(seen.log.filter((l) => l.startsWith('error')).length, 1, 'one drop, one reconnection');
  t.same(seen.log.filter((l) => !l.startsWith('error')), want, 'then the events after it of the same stream: none lost, none twice');
  const json = (await app.inject({ method: 'POST', url: '/sample', payload: { seed, count: 2 } })).json() as { images: Array<{ png: string }> };
  t.same(seen.done!.images.map((i) => i.png), json.images.map((i) => i.png), 'the images of the seed the ids named');
});

t.test('Swagger UI with API_KEYS: Authorize takes a key, and Try it out then sends it', { timeout: 30_000 }, async (t) => {
  const key = 'docs-browser-key-0123456789';
  const ui = await swaggerUi(t, { API_KEYS: key });
  if (!ui) return;
  const { page } = ui;
  const models = ui.operation('get', '/models');
  await models.first().waitFor(WAIT);

  const tryModels = async () => {
    await models.locator('button.execute').click();
    const status = models.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor(WAIT);
    // the table is replaced on each execution: wait for the answer to this one
    await page.waitForTimeout(200);
    return (await status.innerText()).trim();
  };
  await models.locator('.opblock-summary').first().click();
  await models.locator('button.try-out__btn').click();
  t.equal(await tryModels(), '401', 'without a key the server refuses, and the UI shows it');

  await page.locator('.auth-wrapper button.authorize').click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  await dialog.waitFor(WAIT);
  await dialog.locator('input[type="text"], input[type="password"]').first().fill(key);
  await dialog.locator('button.authorize').click();
  await dialog.locator('button.btn-done, button.close-modal').first().click();
  await models.locator('button.btn-clear').click().catch(() => {});
  t.equal(await tryModels(), '200', 'with the key it answers');
  const body = await models.locator('.live-responses-table tbody .response-col_description pre').first().innerText();
  t.same((JSON.parse(body) as { models: Array<{ name: string }> }).models.map((m) => m.name).sort(), ['tiny-c1', 'tiny-c3']);
});

t.test('Swagger UI: "Try it out" on POST /sample, executed as the document fills it in, samples', { timeout: 60_000 }, async (t) => {
  // the documented examples name the shipped mu-fmnist (they named a random string the server refused)
  const ui = await swaggerUi(t, { MODELS_DIR: join(ROOT, 'models'), MODELS: 'mu-fmnist', DEFAULT_MODEL: 'mu-fmnist' });
  if (!ui) return;
  const op = ui.operation('post', '/sample');
  await op.first().waitFor(WAIT);
  await op.locator('.opblock-summary').first().click();
  await op.locator('button.try-out__btn').click();
  const sent = JSON.parse(await op.locator('textarea.body-param__text').inputValue());
  t.same(sent, { model: 'mu-fmnist', count: 2, seed: 7, temperature: 1 }, 'the body Swagger UI starts from');
  await op.locator('button.execute').click();
  const live = op.locator('.live-responses-table');
  const status = live.locator('tbody .response-col_status').first();
  await status.waitFor(WAIT);
  t.equal((await status.innerText()).trim(), '200');
  const shown = JSON.parse(await live.locator('tbody .response-col_description pre').first().innerText()) as { model: string; seed: number; images: unknown[] };
  t.equal(shown.model, 'mu-fmnist');
  t.equal(shown.seed, 7);
  t.equal(shown.images.length, 2);
});
