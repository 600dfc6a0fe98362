// The demo page in a real browser (Debian's Chromium): it lists the models, samples with a seed and
// shows, slice by slice, the images the server streams and at the end exactly the PNGs the API
// returns for that seed; it scores an uploaded file with the score and heat map /likelihood gives;
// with API_KEYS it asks for a key and works once given one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { launchChromium as launch, WAIT } from './browser.js';
import { listening, parseSse, rawToPng } from './helpers.js';

t.test('the demo page samples and scores through the API', { timeout: 60_000 }, async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const { app, url } = await listening();
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/demo' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8');

  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/demo`);
  await page.locator('#model option[value="tiny-c3"]').waitFor({ state: 'attached', ...WAIT });
  t.same(await page.locator('#model option').allTextContents(), ['tiny-c1', 'tiny-c3'], 'the models the server lists');
  t.equal(await page.locator('#model').inputValue(), 'tiny-c1', 'the default one chosen');
  t.match(await page.locator('#modelInfo').innerText(), /28x28x1, S = \d+, stages .*, on cpu/);

  // a seeded sample: the page follows the stream and ends on the API's own PNGs for that seed
  await page.locator('#count').fill('2');
  await page.locator('#seed').fill('5');
  await page.locator('#sample').click();
  await page.locator('#status', { hasText: 'done' }).waitFor(WAIT);
  const shown = await page.locator('#samples img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src));
  const api = (await app.inject({ method: 'POST', url: '/sample', payload: { seed: 5, count: 2 } })).json() as { images: Array<{ png: string }> };
  t.same(shown, api.images.map((i) => `data:image/png;base64,${i.png}`), 'the final images are the API\'s PNGs for seed 5, byte for byte');
  const streamed = parseSse((await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'text/event-stream' }, payload: { seed: 5, count: 2 } })).body);
  const sliceEvents = streamed.filter((e) => e.event === 'slice').length;
  t.equal(await page.locator('#status').getAttribute('data-slices'), String(sliceEvents), `every slice drawn as it came (${sliceEvents})`);
  t.match(await page.locator('#status').innerText(), /^done: seed 5, \d+ slices in \d+ ms/);
  t.match(await page.locator('#samples figcaption').allTextContents(), [/^\d+\.\d{3} bits\/dim$/, /^\d+\.\d{3} bits\/dim$/]);

  // a refusal shows the server's message
  await page.locator('#count').fill('99');
  await page.locator('#sample').click();
  await page.locator('#error', { hasText: 'validation' }).waitFor(WAIT);
  t.match(await page.locator('#error').innerText(), /^sample: .*count.* \(validation\)$/);

  // scoring a file, converted to the model's size: the API's score and heat map
  const dir = mkdtempSync(join(tmpdir(), 'spn-demo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'upload.png');
  const png = await rawToPng(Uint8Array.from({ length: 40 * 40 }, (_, i) => (i * 13) % 256), 40, 40, 1);
  writeFileSync(file, png);
  await page.locator('#file').setInputFiles(file);
  await page.locator('#score', { hasText: 'bits/dim' }).waitFor(WAIT);
  const scored = (await app.inject({ method: 'POST', url: '/likelihood?model=tiny-c1&perPixel=true&resize=true&grayscale=true', headers: { 'content-type': 'image/png' }, payload: png })).json() as { bitsPerDim: number; perPixel: { png: string }; stages: Array<{ stage: string; bitsPerDim: number }> };
  t.equal(await page.locator('#score').innerText(), `${scored.bitsPerDim.toFixed(4)} bits/dim (${(scored.bitsPerDim * 784).toFixed(1)} bits) under tiny-c1`);
  t.equal(await page.locator('#heatmap').getAttribute('src'), `data:image/png;base64,${scored.perPixel.png}`, 'the heat map the API returns');
  const stages = ((await app.inject({ method: 'GET', url: '/models/tiny-c1' })).json() as { stages: unknown[] }).stages.length;
  t.equal(await page.locator('#stages tr').count(), 1 + stages, `a header and a row per stage (${stages})`);
  t.same(await page.locator('#stages td').allTextContents(), scored.stages.flatMap((s) => [s.stage, s.bitsPerDim.toFixed(4)]), 'each stage\'s bits/dim');
  t.same(errors, [], 'no script errors');
});

t.test('with API_KEYS the page asks for a key, then works', { timeout: 60_000 }, async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const key = 'demo-browser-key-0123456789';
  const { app, url } = await listening({ API_KEYS: key });
  t.teardown(() => app.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${url}/demo`);
  await page.locator('#error', { hasText: 'unauthorized' }).waitFor(WAIT);
  t.match(await page.locator('#error').innerText(), /^models: an API key is required/);
  await page.locator('#key').fill(key);
  await page.locator('#connect').click();
  await page.locator('#model option[value="tiny-c1"]').waitFor({ state: 'attached', ...WAIT });
  t.equal(await page.locator('#error').innerText(), '');
  await page.locator('#count').fill('1');
  await page.locator('#seed').fill('2');
  await page.locator('#sample').click();
  await page.locator('#status', { hasText: 'done' }).waitFor(WAIT);
  t.match(await page.locator('#status').innerText(), /^done: seed 2/);
});
