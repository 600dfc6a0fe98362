// The demo page in a real browser (Debian's Chromium): it lists the models, samples with a seed and
// shows, slice by slice, the images the server streams and at the end exactly the PNGs the API
// returns for that seed; it scores an uploaded file with the score and heat map /likelihood gives;
// with API_KEYS it asks for a key and works once given one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import t from 'tap';
import { cuttingProxy, launchChromium as launch, WAIT } from './browser.js';
import { listening, metricValue, parseSse, rawToPng } from './helpers.js';
import { MODELS_DIR as SHIPPED_MODELS_DIR } from '../runtime/fixtures.js';

/** The demo page in a new tab, and the script errors it throws. */
async function openDemo(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${url}/demo`);
  return { page, errors };
}

t.test('the demo page samples and scores through the API', { timeout: 60_000 }, async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const { app, url } = await listening();
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/demo' });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  const slash = await app.inject({ method: 'GET', url: '/demo/' });
  t.equal(slash.statusCode, 301, '/demo/ (whose relative links would miss) redirects');
  t.equal(slash.headers.location, '/demo');

  const { page, errors } = await openDemo(browser, url);
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

t.test('the demo page resumes a sample whose stream is cut mid-way', { timeout: 60_000 }, async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const { app, url } = await listening();
  t.teardown(() => app.close());
  let page: Page | undefined;
  const KEEP = 5;
  // the page keeps count of the events it has handled (slices and stage ends) in data-events
  const proxy = await cuttingProxy(t, url, {
    request: /^POST \/sample /, keep: KEEP,
    dispatched: async () => Number((await page?.locator('#status').getAttribute('data-events')) ?? 0),
  });
  const opened = await openDemo(browser, proxy.url);
  page = opened.page;
  await page.locator('#model option[value="tiny-c1"]').waitFor({ state: 'attached', ...WAIT });
  await page.locator('#count').fill('2');
  await page.locator('#seed').fill('');   // unseeded: the resumed request takes the seed from the id
  await page.locator('#sample').click();
  await page.locator('#status', { hasText: 'done' }).waitFor({ timeout: 20_000 });
  t.ok(proxy.cut(), 'the proxy cut the stream');
  const metrics = (await app.inject('/metrics')).body;
  t.equal(metricValue(metrics, 'spn_stream_resumes_total', { method: 'POST' }), 1, 'the page resumed it once (Last-Event-ID)');
  const status = await page.locator('#status').innerText();
  const seed = Number(/^done: seed (\d+), (\d+) slices/.exec(status)?.[1]);
  const slices = Number(/^done: seed \d+, (\d+) slices/.exec(status)?.[1]);
  const streamed = parseSse((await app.inject({ method: 'POST', url: '/sample', headers: { accept: 'text/event-stream' }, payload: { seed, count: 2 } })).body);
  t.equal(slices, streamed.filter((e) => e.event === 'slice').length, `every slice drawn once (${slices}), none twice`);
  t.equal(await page.locator('#status').getAttribute('data-events'), String(streamed.length - 1), 'every slice and stage event handled once');
  const shown = await page.locator('#samples img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src));
  const api = (await app.inject({ method: 'POST', url: '/sample', payload: { seed, count: 2 } })).json() as { images: Array<{ png: string }> };
  t.same(shown, api.images.map((i) => `data:image/png;base64,${i.png}`), 'the final images are the API\'s PNGs for the seed the ids named');
  t.equal(await page.locator('#sampleError').innerText(), '', 'no error shown');
  t.same(opened.errors, [], 'no script errors');
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
  await page.locator('#modelsError', { hasText: 'unauthorized' }).waitFor(WAIT);
  t.match(await page.locator('#modelsError').innerText(), /^models: an API key is required/);
  t.equal(await page.locator('#sample').isDisabled(), true, 'nothing to sample with until the models load');
  await page.locator('#key').fill(key);
  await page.locator('#connect').click();
  await page.locator('#model option[value="tiny-c1"]').waitFor({ state: 'attached', ...WAIT });
  t.equal(await page.locator('#modelsError').innerText(), '');
  await page.locator('#count').fill('1');
  await page.locator('#seed').fill('2');
  await page.locator('#sample').click();
  await page.locator('#status', { hasText: 'done' }).waitFor(WAIT);
  t.match(await page.locator('#status').innerText(), /^done: seed 2/);
});

t.test('the demo page samples from a given image: a sample of its own, or an uploaded file', { timeout: 90_000 }, async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const { app, url } = await listening({ MODELS_DIR: SHIPPED_MODELS_DIR, MODELS: 'tiny-c1,spn8-fmnist' });
  t.teardown(() => app.close());
  const { page, errors } = await openDemo(browser, url);
  await page.locator('#model option[value="spn8-fmnist"]').waitFor({ state: 'attached', ...WAIT });
  await page.locator('#model').selectOption('tiny-c1');
  const enabled = () => page.locator('#mode option').evaluateAll((os) => os.filter((o) => !(o as HTMLOptionElement).disabled).map((o) => (o as HTMLOptionElement).value));
  t.same(await enabled(), ['', 'upscale', 'add-depth', 'complete'], 'a three-stage model offers every mode');
  t.equal(await page.locator('#slices').getAttribute('max'), '15', 'up to S*S - 1 slices kept (S = 4)');

  const sampleOnce = async (seed: number): Promise<string> => {
    await page.locator('#count').fill('1');
    await page.locator('#seed').fill(String(seed));
    await page.locator('#status').evaluate((e) => { e.textContent = ''; });
    await page.locator('#sample').click();
    await page.locator('#status', { hasText: 'done' }).waitFor(WAIT);
    return (await page.locator('#samples img').first().getAttribute('src'))!;
  };
  const apiSample = async (seed: number, condition: Record<string, unknown>): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/sample', payload: { model: 'tiny-c1', seed, count: 1, condition } });
    t.equal(res.statusCode, 200);
    return `data:image/png;base64,${(res.json() as { images: Array<{ png: string }> }).images[0].png}`;
  };

  // a sample of its own, completed from its first 3 slices with another seed
  const first = await sampleOnce(5);
  await page.locator('#samples button.use').first().click();
  t.equal(await page.locator('#conditionImg').getAttribute('src'), first, 'the chosen sample is shown as the image to start from');
  await page.locator('#mode').selectOption('complete');
  t.equal(await page.locator('#slicesLabel').isVisible(), true, 'complete asks how many slices');
  await page.locator('#slices').fill('3');
  const completed = await sampleOnce(9);
  t.equal(completed, await apiSample(9, { mode: 'complete', image: first.split(',')[1], slices: 3 }), 'the API\'s completion of that image, byte for byte');
  t.not(completed, first, 'a new image');

  // an uploaded file of the model's size, upscaled
  const dir = mkdtempSync(join(tmpdir(), 'spn-demo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fits = await rawToPng(Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 7) % 256), 28, 28, 1);
  writeFileSync(join(dir, 'fits.png'), fits);
  await page.locator('#conditionFile').setInputFiles(join(dir, 'fits.png'));
  await page.locator('#conditionImg[src^="data:image/png;base64,iVBOR"]').waitFor(WAIT);
  t.equal(await page.locator('#conditionImg').getAttribute('src'), `data:image/png;base64,${fits.toString('base64')}`, 'the upload is the image to start from');
  await page.locator('#mode').selectOption('upscale');
  t.equal(await page.locator('#slicesLabel').isVisible(), false);
  t.equal(await sampleOnce(4), await apiSample(4, { mode: 'upscale', image: fits.toString('base64') }), 'the API\'s upscaling of the upload, byte for byte');

  // a colour file of another size: refused as it is; converted when the box is ticked (the default)
  const other = await rawToPng(Uint8Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 29) % 256), 40, 36, 3);
  writeFileSync(join(dir, 'other.png'), other);
  await page.locator('#conditionFile').setInputFiles(join(dir, 'other.png'));
  await page.locator(`#conditionImg[src="data:image/png;base64,${other.toString('base64')}"]`).waitFor({ state: 'attached', ...WAIT });
  await page.locator('#conditionConvert').uncheck();
  await page.locator('#sample').click();
  await page.locator('#sampleError', { hasText: 'image_mismatch' }).waitFor(WAIT);
  t.match(await page.locator('#sampleError').innerText(), /^sample: the image does not fit model 'tiny-c1': it has 3 channels \(RGB\).*condition\.convert\.grayscale.*it is 40x36 .*condition\.convert\.resize/);
  await page.locator('#conditionConvert').check();
  t.equal(await sampleOnce(6), await apiSample(6, { mode: 'upscale', image: other.toString('base64'), convert: { resize: true, grayscale: true } }),
    'the API\'s upscaling of the converted upload, byte for byte');
  t.equal(await page.locator('#sampleError').innerText(), '', 'the error is cleared');
  t.match(await page.locator('#status').innerText(), /the given image was converted RGB to grey \(Rec\. 601 luma\), then resized 40x36 to 28x28/);

  // the single-stage model has nothing to upscale with and no depth upscaler
  await page.locator('#model').selectOption('spn8-fmnist');
  t.same(await enabled(), ['', 'complete'], 'a single-stage model offers only completion');
  t.equal(await page.locator('#mode').inputValue(), '', 'upscale, chosen before, falls back to nothing');
  t.same(errors, [], 'no script errors');
});

t.test('the demo page on a phone: bad fields, a busy server, failures and dropped files', { timeout: 90_000 }, async (t) => {
  const browser = await launch(t);
  if (!browser) return;
  const { app, url } = await listening();
  t.teardown(() => app.close());
  const page = await browser.newPage({ viewport: { width: 375, height: 740 } });
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const posts: string[] = [];
  page.on('request', (r) => { if (r.method() === 'POST') posts.push(new URL(r.url()).pathname); });
  const srcs = () => page.locator('#samples img').evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src));
  const inView = (id: string) => page.locator(id).evaluate((e) => { const r = e.getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; });

  // the model list cannot be fetched (the network fails once): said in the Server box, nothing to sample with
  let failModels = true;
  await page.route(/\/models$/, (route) => (failModels ? ((failModels = false), route.abort()) : route.continue()));
  await page.goto(`${url}/demo`);
  await page.locator('#modelsError', { hasText: 'could not reach the server' }).waitFor(WAIT);
  t.equal(await page.locator('#sample').isDisabled(), true, 'no models, no sampling');
  await page.locator('#connect').click();
  await page.locator('#model option[value="tiny-c3"]').waitFor({ state: 'attached', ...WAIT });
  t.equal(await page.locator('#modelsError').innerText(), '', 'loaded on the second try');
  t.equal(await page.locator('#sample').isDisabled(), false);
  t.match(await page.locator('#modelInfo').innerText(), /on cpu\. Tiny grayscale MU configuration for tests/, 'the model\'s description is shown');
  t.equal(await page.evaluate(() => document.documentElement.scrollWidth), 375, 'nothing wider than a 375 px screen');

  // a sample, then fields the server would refuse: said next to the button, in the page's words,
  // nothing sent, and the last images stay
  await page.locator('#count').fill('2');
  await page.locator('#seed').fill('3');
  await page.locator('#sample').click();
  await page.locator('#status', { hasText: 'done' }).waitFor(WAIT);
  const shown = await srcs();
  t.equal(shown.length, 2);
  const sent = posts.length;
  const bad: Array<[string, string, RegExp]> = [
    ['count', '100', /^sample: Images must be a whole number from 1 to 16, not 100$/],
    ['count', '', /^sample: Images must be a whole number from 1 to 16$/],
    ['temperature', '', /^sample: Temperature must be a number from 0\.05 to 2$/],
    ['temperature', '5', /^sample: Temperature must be a number from 0\.05 to 2, not 5$/],
    ['seed', '-1', /^sample: Seed must be a whole number from 0 to 4294967295, not -1$/],
    ['seed', '1.5', /^sample: Seed must be a whole number from 0 to 4294967295, not 1\.5$/],
  ];
  for (const [id, value, message] of bad) {
    const good = await page.locator(`#${id}`).inputValue();
    await page.locator(`#${id}`).fill(value);
    await page.locator('#sample').click();
    await page.locator('#sampleError', { hasText: 'must be' }).waitFor(WAIT);
    t.match(await page.locator('#sampleError').innerText(), message, `${id} = '${value}'`);
    t.ok(await inView('#sampleError'), 'the error is on screen');
    await page.locator(`#${id}`).fill(good);
    await page.locator('#sampleError').evaluate((e) => { e.textContent = ''; });
  }
  t.equal(posts.length, sent, 'none of them was sent');
  t.same(await srcs(), shown, 'the last images stay');

  // a busy server (429 with Retry-After): the page waits and tries again
  let busy = true;
  await page.route(/\/sample$/, (route) => (busy
    ? ((busy = false), route.fulfill({ status: 429, headers: { 'retry-after': '1', 'content-type': 'application/json' }, body: JSON.stringify({ error: 'Model is overloaded', error_type: 'overloaded' }) }))
    : route.continue()));
  await page.locator('#seed').fill('4');
  await page.locator('#sample').click();
  await page.locator('#status', { hasText: 'the server is busy (429): trying again in 1 s' }).waitFor(WAIT);
  t.same(await srcs(), shown, 'the last images stay while it waits');
  await page.locator('#status', { hasText: 'done' }).waitFor(WAIT);
  t.match(await page.locator('#status').innerText(), /^done: seed 4, .* with tiny-c1$/);
  const api = (await app.inject({ method: 'POST', url: '/sample', payload: { seed: 4, count: 2 } })).json() as { images: Array<{ png: string }> };
  t.same(await srcs(), api.images.map((i) => `data:image/png;base64,${i.png}`), 'then the API\'s PNGs for seed 4');
  t.equal(await page.locator('#sampleError').innerText(), '', 'no error');
  t.equal(await page.locator('#sampleDone').textContent(), 'done: 2 images, seed 4', 'the end is announced (role=status)');
  t.equal(await page.locator('#samples button.use').first().getAttribute('aria-label'), 'start from this: sample 1', 'each image\'s button says which, after its visible words');
  await page.unroute(/\/sample$/);

  // the server cannot be reached at all: said so, with the browser's reason (it was reported as a
  // cut stream); and Sample, pressed from the keyboard, has the focus back afterwards (disabling
  // it while sampling dropped the focus to the page)
  await page.route(/\/sample$/, (route) => route.abort());
  await page.locator('#sample').focus();
  await page.keyboard.press('Enter');
  await page.locator('#sampleError', { hasText: 'could not reach' }).waitFor({ timeout: 20_000 });
  t.match(await page.locator('#sampleError').innerText(), /^sample: could not reach the server \(.+\)$/);
  t.equal(await page.evaluate(() => document.activeElement?.id), 'sample', 'the focus is back on Sample');
  t.same(await srcs(), api.images.map((i) => `data:image/png;base64,${i.png}`), 'the last images stay');
  await page.unroute(/\/sample$/);
  await page.locator('#sampleError').evaluate((e) => { e.textContent = ''; });

  // stop-after stages that the chosen start leaves nothing to generate in are not offered (S = 4)
  await page.locator('#samples button.use').first().click();
  const disabled = () => page.locator('#stopAfter option').evaluateAll((os) => os.filter((o) => (o as HTMLOptionElement).disabled).map((o) => (o as HTMLOptionElement).value));
  await page.locator('#mode').selectOption('upscale');
  t.same(await disabled(), ['small'], 'upscale: the small image is given');
  await page.locator('#stopAfter').selectOption('size');
  await page.locator('#mode').selectOption('add-depth');
  t.same(await disabled(), ['small', 'size'], 'add depth: both low-depth stages are given');
  t.equal(await page.locator('#stopAfter').inputValue(), 'depth', 'the choice moves to a stage that generates');
  await page.locator('#mode').selectOption('complete');
  await page.locator('#slices').fill('15');
  t.same(await disabled(), ['small'], 'complete from 15 of 16 slices: the small image (slice 0) is given');
  await page.locator('#slices').fill('16');
  await page.locator('#sample').click();
  await page.locator('#sampleError', { hasText: 'must be' }).waitFor(WAIT);
  t.equal(await page.locator('#sampleError').innerText(), 'sample: Slices kept must be a whole number from 1 to 15, not 16');
  await page.locator('#mode').selectOption('');
  t.same(await disabled(), [], 'from nothing every stage generates');

  // Likelihood: a file that is not an image is said to be so, not sent
  const dir = mkdtempSync(join(tmpdir(), 'spn-demo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'notes.png'), 'not an image');
  await page.locator('#file').setInputFiles(join(dir, 'notes.png'));
  await page.locator('#scoreError', { hasText: 'is not' }).waitFor(WAIT);
  t.equal(await page.locator('#scoreError').innerText(), "likelihood: 'notes.png' is not a PNG, JPEG or WebP image");
  t.notOk(posts.includes('/likelihood'), 'not sent');
  // an error holding a long unbroken word (the file's name) wraps inside the box
  const longName = 'Screenshot_20240101-123456_Chrome_fashion_mnist_sample_export_final_v2.png';
  writeFileSync(join(dir, longName), 'not an image');
  await page.locator('#file').setInputFiles(join(dir, longName));
  await page.locator('#scoreError', { hasText: longName }).waitFor(WAIT);
  t.equal(await page.evaluate(() => document.documentElement.scrollWidth), 375, 'a long error stays within a 375 px screen');
  // an image: scored, and scored again under another model when the model changes
  const png = await rawToPng(Uint8Array.from({ length: 30 * 30 }, (_, i) => (i * 11) % 256), 30, 30, 1);
  writeFileSync(join(dir, 'upload.png'), png);
  await page.locator('#file').setInputFiles(join(dir, 'upload.png'));
  await page.locator('#score', { hasText: 'bits/dim' }).waitFor(WAIT);
  t.equal(await page.locator('#scoreError').innerText(), '', 'the error is cleared');
  const apiScore = async (model: string, convert: string) => ((await app.inject({ method: 'POST', url: `/likelihood?model=${model}&resize=true&${convert}=true`, headers: { 'content-type': 'image/png' }, payload: png })).json() as { bitsPerDim: number }).bitsPerDim;
  t.match(await page.locator('#score').innerText(), new RegExp(`^${(await apiScore('tiny-c1', 'grayscale')).toFixed(4)} bits/dim .* under tiny-c1$`));
  t.match(await page.locator('#heatmapLegend').innerText(), /^heat map: \d+\.\d\d \(dark\) to \d+\.\d\d \(bright\) bits per pixel$/, 'the heat map\'s range is written out');
  await page.locator('#model').selectOption('tiny-c3');
  await page.locator('#score', { hasText: /bits\/dim .* under tiny-c3$/ }).waitFor(WAIT);
  t.match(await page.locator('#score').innerText(), new RegExp(`^${(await apiScore('tiny-c3', 'rgb')).toFixed(4)} bits/dim .* under tiny-c3$`), 'the same file under tiny-c3 (made RGB)');
  // the network fails: said, and the last score, heat map and table are cleared
  await page.route(/\/likelihood\?/, (route) => route.abort());
  await page.locator('#model').selectOption('tiny-c1');
  await page.locator('#scoreError', { hasText: 'could not reach the server' }).waitFor(WAIT);
  t.equal(await page.locator('#score').innerText(), '');
  t.equal(await page.locator('#heatmap').isVisible(), false);
  t.equal(await page.locator('#stages tr').count(), 0);
  await page.unroute(/\/likelihood\?/);

  // files dropped on the Likelihood box are scored; on the sampling box they are the image to start from
  const dropped = await page.evaluateHandle((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
    return dt;
  }, [...png]);
  await page.dispatchEvent('#scoreBox', 'drop', { dataTransfer: dropped });
  await page.locator('#score', { hasText: 'bits/dim' }).waitFor(WAIT);
  t.match(await page.locator('#score').innerText(), / under tiny-c1$/);
  t.equal(await page.locator('#scoreError').innerText(), '');
  await page.dispatchEvent('#conditionBox', 'drop', { dataTransfer: dropped });
  await page.locator(`#conditionImg[src="data:image/png;base64,${png.toString('base64')}"]`).waitFor({ state: 'attached', ...WAIT });
  t.equal(await page.locator('#mode').inputValue(), 'complete', 'a start mode is chosen');
  t.equal(await page.evaluate(() => document.documentElement.scrollWidth), 375, 'still nothing wider than the screen');
  t.same(errors, [], 'no script errors');
});
