// Scheduling: seeds fix results under batching, requests join running batches, the queue is
// bounded, aborted requests leave, and one request's failure does not fail the others.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CancelledError, NoWorkerError, OverloadedError, WorkerFailedError } from '../../src/runtime/errors.js';
import type { Manifest } from '../../src/runtime/manifest.js';
import { TINY_MODELS_DIR } from './fixtures.js';
import { collect, doneOf, quietLogger, runtime } from './helpers.js';

const tinyManifest = (): Manifest => JSON.parse(readFileSync(join(TINY_MODELS_DIR, 'tiny-c1', 'manifest.json'), 'utf8'));

const req = (seed: number, extra = {}) => ({ model: 'tiny-c1', count: 1, seed, temperature: 1, ...extra });

t.test('a seed fixes the image, alone or batched with other requests', async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const alone = doneOf(await collect(rt.sample(req(42))));
  const together = await Promise.all([collect(rt.sample(req(7))), collect(rt.sample(req(42))), collect(rt.sample(req(9, { count: 3 })))]);
  t.same([...doneOf(together[1]).images[0].data], [...alone.images[0].data], 'same image for seed 42');
  t.notSame([...doneOf(together[0]).images[0].data], [...alone.images[0].data], 'another seed gives another image');
  t.equal(doneOf(together[1]).seed, 42, 'seed echoed');
  // sample i of a request with count 3 is fixed too
  const again = doneOf(await collect(rt.sample(req(9, { count: 3 }))));
  t.same(again.images.map((i) => [...i.data]), doneOf(together[2]).images.map((i) => [...i.data]));
  t.ok(alone.bitsPerDim[0] > 0 && alone.bitsPerDim[0] < 8, `bits/dim of the sample ${alone.bitsPerDim[0]}`);
});

t.test('events come slice by slice in subscale order, stage by stage', async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const ev = await collect(rt.sample(req(1)));
  const m = rt.model('tiny-c1')!;
  const expected: string[] = [];
  for (const st of m.stages) {
    for (let k = st.firstSlice; k < st.lastSlice; k++) expected.push(`slice ${st.name} ${k}`);
    expected.push(`stage ${st.name}`);
  }
  expected.push('done');
  t.same(ev.map((e) => (e.type === 'slice' ? `slice ${e.stage} ${e.slice}` : e.type === 'stage' ? `stage ${e.stage}` : e.type)), expected);
  const last = ev.filter((e) => e.type === 'slice').at(-1)!;
  t.same(last.type === 'slice' && [...last.image.data], [...doneOf(ev).images[0].data], 'the last slice event carries the final image');
  const first = ev[0];
  t.ok(first.type === 'slice' && first.values.length === 7 * 7 && first.offset[0] === 0 && first.offset[1] === 0);
});

t.test("a request's samples share every run: one conditioning run per slice, one decoder run per row", async (t) => {
  const runs = new Map<string, number[]>();
  const rt = await runtime({ observer: { graphRun: (_m, s, g, _sec, b) => { const k = `${s}/${g}`; runs.set(k, [...(runs.get(k) ?? []), b]); } } });
  t.teardown(() => rt.close());
  doneOf(await collect(rt.sample(req(4, { count: 4 }))));
  await new Promise((r) => setTimeout(r, 250));   // run timings arrive in bundles
  const m = rt.model('tiny-c1')!;
  const h = 28 / m.subscaleFactor;
  const manifest = tinyManifest();
  for (const [k, st] of m.stages.entries()) {
    const slices = st.lastSlice - st.firstSlice;
    // a stage whose first slice has a constant context skips that slice's conditioning run
    const conditioned = slices - (manifest.stages[k].firstContextConstant ? 1 : 0);
    t.same(runs.get(`${st.name}/conditioning`) ?? [], new Array(conditioned).fill(4), `${st.name}: ${conditioned} conditioning runs of batch 4`);
    t.same(runs.get(`${st.name}/sample_row`), new Array(slices * h).fill(4), `${st.name}: ${slices * h} row runs of batch 4`);
  }
  t.ok(manifest.stages.some((s) => s.firstContextConstant), 'tiny-c1 has a stage with a constant first context');
});

t.test("scoring runs all of a stage's slices of an image in one batched run", async (t) => {
  const runs = new Map<string, number[]>();
  const rt = await runtime({ observer: { graphRun: (_m, s, g, _sec, b) => { const k = `${s}/${g}`; runs.set(k, [...(runs.get(k) ?? []), b]); } } });
  t.teardown(() => rt.close());
  const image = { height: 28, width: 28, channels: 1, data: Uint8Array.from({ length: 784 }, (_, i) => (i * 7) % 256) };
  const r = await rt.likelihood({ model: 'tiny-c1', image });
  await new Promise((res) => setTimeout(res, 250));
  const manifest = tinyManifest();
  for (const st of manifest.stages) {
    const constant = st.firstContextConstant ? 1 : 0;
    const rest = st.lastSlice - st.firstSlice - constant;
    t.same(runs.get(`${st.name}/score`) ?? [], rest ? [rest] : [], `${st.name}: one score run of batch ${rest}`);
    t.same(runs.get(`${st.name}/score_context`) ?? [], constant ? [1] : [], `${st.name}: the constant-context slice ${constant ? 'from score_context' : 'absent'}`);
    const scored = r.stages.find((s) => s.stage === st.name)!.slices;
    t.equal(scored.length, st.lastSlice - st.firstSlice, `${st.name}: a score per slice`);
    t.ok(scored.every((x) => x.bits > 0), `${st.name}: every slice scored`);
  }
});

t.test('likelihoodBatch: the images of one request share the runs, in order, each as scored alone', async (t) => {
  const runs = new Map<string, number[]>();
  const rt = await runtime({ observer: { graphRun: (_m, s, g, _sec, b) => { const k = `${s}/${g}`; runs.set(k, [...(runs.get(k) ?? []), b]); } } });
  t.teardown(() => rt.close());
  const images = [3, 5, 11].map((k) => ({ height: 28, width: 28, channels: 1, data: Uint8Array.from({ length: 784 }, (_, i) => (i * k) % 256) }));
  const alone: { bitsPerDim: number }[] = [];
  for (const image of images) alone.push(await rt.likelihood({ model: 'tiny-c1', image }));
  await new Promise((res) => setTimeout(res, 250));
  runs.clear();
  const r = await rt.likelihoodBatch({ model: 'tiny-c1', images });
  await new Promise((res) => setTimeout(res, 250));
  t.equal(r.results.length, 3);
  r.results.forEach((one, i) => t.ok(Math.abs(one.bitsPerDim - alone[i].bitsPerDim) < 1e-9, `image ${i}: ${one.bitsPerDim} vs ${alone[i].bitsPerDim} alone`));
  for (const st of tinyManifest().stages) {
    const constant = st.firstContextConstant ? 1 : 0;
    const rest = st.lastSlice - st.firstSlice - constant;
    t.same(runs.get(`${st.name}/score`) ?? [], rest ? [3 * rest] : [], `${st.name}: one score run of batch ${3 * rest}`);
    t.same(runs.get(`${st.name}/score_context`) ?? [], constant ? [3] : [], `${st.name}: one score_context run of batch ${3 * constant}`);
  }
  const bad = { height: 14, width: 14, channels: 1, data: new Uint8Array(196) };
  await t.rejects(rt.likelihoodBatch({ model: 'tiny-c1', images: [images[0], bad] }), /image 1: image is 14x14/, 'a misfit image is named');
  await t.rejects(rt.likelihoodBatch({ model: 'tiny-c1', images: [] }), /no images to score/);
  // aborted at once (while its worker is being chosen: such an abort was missed before): it
  // leaves, and the runtime goes on
  const ac = new AbortController();
  const many = rt.likelihoodBatch({ model: 'tiny-c1', images: Array.from({ length: 48 }, (_, i) => images[i % 3]), signal: ac.signal });
  ac.abort();
  await t.rejects(many, { name: 'CancelledError' });
  t.equal(rt.stats().running, 0, 'its place is free');
  t.ok((await rt.likelihood({ model: 'tiny-c1', image: images[1] })).bitsPerDim === alone[1].bitsPerDim, 'the next request scores as before');
});

t.test('a request that arrives while another runs joins its batches (continuous batching)', async (t) => {
  const batches: number[] = [];
  const rt = await runtime({ observer: { graphRun: (_m, _s, g, _sec, b) => { if (g === 'sample_row') batches.push(b); } } });
  t.teardown(() => rt.close());
  // the second request starts once the first has made its first slice
  let startSecond!: () => void;
  const firstSliceSeen = new Promise<void>((r) => { startSecond = r; });
  const first = (async () => {
    const evs = [];
    for await (const ev of rt.sample(req(1))) { evs.push(ev); if (ev.type === 'slice') startSecond(); }
    return evs;
  })();
  await firstSliceSeen;
  const t0 = performance.now();
  const second = collect(rt.sample(req(2)));
  const [a, b] = await Promise.all([first, second]);
  const tookSecond = performance.now() - t0;
  t.ok(batches.includes(2), 'some row steps ran with both requests in one batch');
  t.ok(doneOf(a).timings.totalMs > 0 && tookSecond > 0);
  t.equal(doneOf(b).timings.queueMs < 50, true, `second request did not wait for the first to end (queue ${doneOf(b).timings.queueMs} ms)`);
});

t.test('stages take turns: a stage keeps the turn for a quantum of steps, and a newcomer gets it within one', async (t) => {
  // Request A is in its second stage (size) when B arrives in the first (small, 7 rows, no
  // conditioning run): their rows cannot share runs, so the worker alternates between the two
  // stages' row graphs, `quantum` runs at a time (with quantum 1, every other run).
  for (const quantum of [4, 1]) {
    const runs: { stage: string; batch: number; startMs: number }[] = [];
    const arrivals: number[] = [];
    const rt = await runtime({
      quantum,
      observer: {
        graphRun: (_m, stage, g, seconds, batch, endMs) => { if (g === 'sample_row') runs.push({ stage, batch, startMs: endMs - seconds * 1000 }); },
        arrived: (_m, _lanes, atMs) => arrivals.push(atMs),
      },
    });
    let bSent = false;
    let startB!: () => void;
    const aInSize = new Promise<void>((r) => { startB = r; });
    const a = (async () => {
      for await (const ev of rt.sample(req(31))) if (ev.type === 'slice' && !bSent) startB();
    })();
    await aInSize;
    bSent = true;
    doneOf(await collect(rt.sample(req(32))));
    await a;
    await rt.close();
    t.equal(arrivals.length, 2, 'both requests reached the engine');
    // The runs that started once B was in the engine (the worker takes messages in only while a run
    // waits for its turn of the event loop, after that run's groups were chosen): before B's first
    // row, at most what is left of A's quantum. How many of A's rows ran while B's request was on
    // its way to the worker depends on the machine (up to 3 seen at quantum 1 on a busy one), so
    // it is not counted.
    const after = runs.filter((r) => r.startMs >= arrivals[1]);
    const firstB = after.findIndex((r) => r.stage === 'small');
    t.ok(firstB >= 0 && firstB <= quantum, `quantum ${quantum}: B's first row ran after ${firstB} of A's once B was in (at most the quantum)`);
    // B's 7 small-image rows, in streaks: the runs from B's first to its last small row
    const lastB = after.map((r) => r.stage).lastIndexOf('small');
    const span = after.slice(firstB, lastB + 1).map((r) => r.stage === 'small');
    t.equal(span.filter(Boolean).length, 7, `quantum ${quantum}: B's 7 rows of the small image`);
    const streaks: number[] = [];
    span.forEach((isB, i) => { if (isB) { if (i > 0 && span[i - 1]) streaks[streaks.length - 1]++; else streaks.push(1); } });
    if (quantum === 4) {
      t.same(streaks, [4, 3], "quantum 4: B's rows in turns of 4");
    } else {
      // every tick runs both stages, except a tick in which A runs its next slice's conditioning
      t.ok(streaks.length >= 4 && Math.max(...streaks) <= 2, `quantum 1: B's rows interleaved with A's (${streaks})`);
    }
    const aStreaks = span.join('').split('true').filter((x) => x).map((x) => x.split('false').length - 1);
    t.ok(aStreaks.every((n) => n <= quantum), `quantum ${quantum}: A's rows in between in turns of at most ${quantum} (${aStreaks})`);
  }
});

t.test('a turn ends with its slice when that comes before the quantum: the stage\'s row group empties', async (t) => {
  // A in the depth stage (16 slices of 7 rows), B arriving in small, then size (15 slices): at
  // each slice's end a stage's lanes leave its row group for one conditioning run, and the turn
  // passes on, however much of the quantum (20 rows) is left. (Holding the turn across slices made
  // smaller runs for requests in step: the engine's header comment.)
  const quantum = 20;
  const runs: { stage: string; graph: string; startMs: number }[] = [];
  const arrivals: number[] = [];
  const rt = await runtime({
    quantum,
    observer: {
      graphRun: (_m, stage, graph, seconds, _b, endMs) => runs.push({ stage, graph, startMs: endMs - seconds * 1000 }),
      arrived: (_m, _lanes, atMs) => arrivals.push(atMs),
    },
  });
  t.teardown(() => rt.close());
  let startB!: () => void;
  const aInDepth = new Promise<void>((r) => { startB = r; });
  const a = (async () => {
    for await (const ev of rt.sample(req(31))) if (ev.type === 'slice' && ev.stage === 'depth') startB();
  })();
  await aInDepth;
  doneOf(await collect(rt.sample(req(32))));
  await a;
  // the row runs of depth (A) and size (B) from B's first size row to its last: their turns
  const rows = runs.filter((r) => r.startMs >= arrivals[1] && r.graph === 'sample_row' && r.stage !== 'small').map((r) => r.stage);
  const window = rows.slice(rows.indexOf('size'), rows.lastIndexOf('size') + 1);
  const turns: number[] = [];
  window.forEach((s, i) => { if (i > 0 && s === window[i - 1]) turns[turns.length - 1]++; else turns.push(1); });
  t.equal(window.filter((s) => s === 'size').length, 15 * 7, "B's 105 size rows");
  // the first turn is cut by B's start; the last ones by A's end and the window's
  const inner = turns.slice(1, -2);
  t.ok(inner.length >= 10, `turns while both stages have lanes: ${turns}`);
  t.same(inner, inner.map(() => 7), `each a slice of 7 rows, not the quantum of ${quantum} (${turns})`);
});

t.test("a request's results that reached the main thread survive its worker crashing later", async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const alone = await collect(rt.sample(req(41)));
  const w = rt.pool.workers[0];
  const gen = rt.sample(req(41));
  const first = await gen.next();   // a slow consumer (an event stream to a slow client): one event, then nothing
  t.equal(first.value?.type, 'slice');
  // A second request on the same worker, one step behind: once its result is in, so is the
  // first's (a worker's messages arrive in order), all of it waiting to be read
  doneOf(await collect(rt.sample(req(42))));
  t.equal(w.requests.size, 1, 'the first is still registered with its worker (its consumer has not finished)');
  w.post({ type: 'crash' });   // then the worker dies, e.g. in another request's run
  while (rt.pool.workers.includes(w)) await new Promise((r) => setTimeout(r, 5));
  const rest = [first.value!];
  for (let r = await gen.next(); !r.done; r = await gen.next()) rest.push(r.value);
  t.equal(rest.length, alone.length, 'every event (it failed with the crash\'s error, its results unread)');
  t.same([...doneOf(rest).images[0].data], [...doneOf(alone).images[0].data], 'ending with its image');
  t.equal(rt.stats().running, 0);
});

t.test('the queue is bounded: past it a request is refused at once', async (t) => {
  const failures: string[] = [];
  const rt = await runtime({ maxRunning: 1, maxQueue: 1, observer: { failed: (r) => failures.push(r) } });
  t.teardown(() => rt.close());
  let settled = 0;
  const running = collect(rt.sample(req(1))).finally(() => settled++);
  const queued = collect(rt.sample(req(2))).finally(() => settled++);
  await new Promise((r) => setImmediate(r));
  t.same(rt.stats().running, 1);
  t.same(rt.stats().queued, 1);
  await t.rejects(collect(rt.sample(req(3))), OverloadedError);
  // refused at once: not after the running or the queued request made room
  t.equal(settled, 0, 'refused while both earlier requests were still in flight');
  t.same([rt.stats().running, rt.stats().queued], [1, 1]);
  t.same(failures, ['overloaded']);
  await Promise.all([running, queued]);
  t.same(rt.stats(), { queued: 0, running: 0, lastBatch: rt.stats().lastBatch, workersReady: 1 });
});

t.test('an aborted request leaves the batch and frees its place; the others finish', async (t) => {
  // The other request has 12 samples, the victim 1: a run carrying both has a batch of 13. The
  // victim is aborted after its 2nd slice, i.e. after 15 runs: the small image's one slice (7 row
  // runs; its context is constant, so no conditioning run) and the first size slice (1
  // conditioning + 7 row runs). Runs may go on while the abort travels to the worker, but a victim
  // that stayed would be in 7 + 15 x 8 + 16 x 8 = 255 runs.
  const batches = new Map<number, number>();
  const rt = await runtime({ maxRunning: 2, maxQueue: 0, observer: { graphRun: (_m, _s, _g, _sec, b) => batches.set(b, (batches.get(b) ?? 0) + 1) } });
  t.teardown(() => rt.close());
  const ac = new AbortController();
  const other = collect(rt.sample(req(5, { count: 12 })));
  const victim = (async () => {
    let slices = 0;
    for await (const ev of rt.sample(req(6, { signal: ac.signal }))) {
      if (ev.type === 'slice' && ++slices === 2) ac.abort();
    }
  })();
  await t.rejects(victim, CancelledError);
  t.equal(rt.stats().running, 1, 'its place is free at once');
  const done = doneOf(await other);
  t.equal(done.images.length, 12, 'the other request finished');
  // the victim's runs: shared with the other request (13) or, out of step with it, alone (1)
  const victimRuns = (batches.get(13) ?? 0) + (batches.get(1) ?? 0);
  const otherAlone = batches.get(12) ?? 0;
  t.ok(victimRuns >= 15 && victimRuns <= 64, `runs carrying the aborted request: ${victimRuns} (15 before the abort, some while it travelled; 255 had it stayed)`);
  t.ok(otherAlone > 200, `the other request ran on alone (${otherAlone} runs)`);
  // and the abort did not disturb it: the same images as when it runs alone
  const alone = doneOf(await collect(rt.sample(req(5, { count: 12 }))));
  t.same(done.images.map((i) => [...i.data]), alone.images.map((i) => [...i.data]), 'images unchanged by the abort');
  // and its place can be taken
  doneOf(await collect(rt.sample(req(8))));
});

t.test("one request's failure does not fail the others in its batch", async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const alone = doneOf(await collect(rt.sample(req(21, { count: 2 }))));
  // a malformed request (uniforms for the first stage only) fails when it reaches the second
  // stage, inside runs it shares with the healthy request
  const m = rt.model('tiny-c1')!;
  const broken = [[new Float32Array(m.subscaleFactor ** 2 * 49).fill(0.5)]];
  const [good, bad] = await Promise.allSettled([
    collect(rt.sample(req(21, { count: 2 }))),
    collect(rt.sample({ ...req(22), uniforms: broken } as Parameters<typeof rt.sample>[0])),
  ]);
  t.equal(bad.status, 'rejected', 'the malformed request fails');
  t.match(bad.status === 'rejected' && String(bad.reason), /run failed/);
  t.equal(good.status, 'fulfilled', 'the healthy request finishes');
  if (good.status === 'fulfilled') {
    t.same(doneOf(good.value).images.map((i) => [...i.data]), alone.images.map((i) => [...i.data]), 'with the same images as alone');
  }
  t.equal(rt.stats().running, 0);
});

t.test('a killed worker fails only its in-flight requests and is replaced', async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const victim = rt.pool.workers[0];
  const inflight = (async () => {
    for await (const ev of rt.sample(req(11))) {
      // an uncaught error inside the worker, between two runs, as a real crash would be
      if (ev.type === 'slice' && victim.ready) victim.post({ type: 'crash' });
    }
  })();
  const threadId = victim.worker.threadId;
  await t.rejects(inflight, WorkerFailedError);
  await t.rejects(inflight, new RegExp(`^inference worker ${threadId} exited \\(code 1\\) while running this request$`), 'naming the worker (it said -1: the id is gone once it has exited)');
  t.equal(rt.stats().workersReady, 0, 'no worker ready while the replacement loads');
  // the next request waits for the replacement worker and is served by it
  const next = doneOf(await collect(rt.sample(req(11))));
  t.equal(next.images.length, 1, 'served by the replacement worker');
  t.equal(rt.stats().running, 0);
  t.equal(rt.stats().workersReady, 1, 'the replacement is ready');
});

t.test('a request waiting for a replacement worker leaves at once when aborted', async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const victim = rt.pool.workers[0];
  const inflight = (async () => {
    for await (const ev of rt.sample(req(12))) if (ev.type === 'slice' && victim.ready) victim.post({ type: 'crash' });
  })();
  await t.rejects(inflight, WorkerFailedError);
  t.notOk(rt.pool.workers.some((w) => w.ready), 'no worker is ready: the replacement is loading');
  const ac = new AbortController();
  const waiting = collect(rt.sample({ ...req(13), signal: ac.signal }));
  await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  await t.rejects(waiting, { name: 'CancelledError' });
  t.notOk(rt.pool.workers.some((w) => w.ready), 'it left before the replacement was ready (it used to wait for it)');
  t.equal(rt.stats().running, 0, 'its place is free');
  t.equal(doneOf(await collect(rt.sample(req(14)))).images.length, 1, 'the replacement then serves');
});

t.test('closing the runtime ends a request waiting for a replacement worker at once', async (t) => {
  const rt = await runtime();
  const victim = rt.pool.workers[0];
  const inflight = (async () => {
    for await (const ev of rt.sample(req(15))) if (ev.type === 'slice' && victim.ready) victim.post({ type: 'crash' });
  })();
  await t.rejects(inflight, WorkerFailedError);
  let settled = '';
  const waiting = collect(rt.sample(req(16))).then(() => { settled = 'served'; }, (e: Error) => { settled = e.message; });
  await new Promise((r) => setTimeout(r, 20));
  t.equal(rt.stats().running, 1, 'it holds a place while it waits');
  await rt.close();
  await Promise.race([waiting, new Promise((r) => setTimeout(r, 100))]);
  t.match(settled, /shut|clos/i, `settled by close (${settled || 'still pending'}; it waited out its 30 s and said no worker was ready)`);
  t.equal(rt.stats().running, 0, 'its place is free');
});

t.test('a replacement worker that fails to start is retried; meanwhile requests fail at once, saying why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spn-models-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(TINY_MODELS_DIR, 'tiny-c1'), join(dir, 'tiny-c1'), { recursive: true });
  const failures: string[] = [];
  const rt = await runtime({ modelsDir: dir, models: ['tiny-c1'], logger: { ...quietLogger, error: (_o: unknown, msg?: string) => { failures.push(String(msg)); } } });
  t.teardown(() => rt.close());
  const graph = join(dir, 'tiny-c1', 'small', 'conditioning.onnx');
  const good = readFileSync(graph);
  writeFileSync(graph, 'corrupt');   // changed on disk after start-up: a replacement cannot load it
  const victim = rt.pool.workers[0];
  victim.post({ type: 'crash' });
  while (rt.pool.workers.includes(victim)) await new Promise((r) => setTimeout(r, 5));
  // a request that waits for the replacement learns of its failure when it happens
  const t0 = performance.now();
  await t.rejects(collect(rt.sample(req(51))), { name: 'NoWorkerError', message: /^no inference worker is ready: the replacement failed to start \(.*small\/conditioning\.onnx.*\); retrying$/ });
  const t1 = performance.now();
  await t.rejects(collect(rt.sample(req(52))), NoWorkerError);
  t.ok(performance.now() - t1 < 500, `the next one at once (${(performance.now() - t1).toFixed(0)} ms; each waited 30 s for a worker that was not coming)`);
  t.ok(t1 - t0 < 5000, `the first when the replacement failed (${(t1 - t0).toFixed(0)} ms)`);
  t.equal(rt.stats().running, 0, 'their places are free');
  writeFileSync(graph, good);   // the cause is fixed: a retry (after 1 s, then 2, 4, ... s) starts a worker
  for (let i = 0; i < 400 && !rt.stats().workersReady; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(rt.stats().workersReady, 1, 'a retry started a worker (it was never retried: no worker, for good)');
  t.equal(doneOf(await collect(rt.sample(req(53)))).images.length, 1, 'which serves');
  t.ok(failures.filter((m) => m === 'replacement worker failed to start').length >= 1, 'each failure logged');
});

t.test('a request admitted as the runtime closes is refused, not sent to a closing worker', async (t) => {
  const rt = await runtime();
  const sampled = collect(rt.sample(req(61)));   // admitted at once, then waits its turn for a worker
  const closing = rt.close();                     // in the same tick
  await t.rejects(sampled, { name: 'WorkerFailedError', message: 'the runtime closed while this request waited for an inference worker' },
    'it said its worker exited (code 0) while running it: the request went to a worker told to close');
  await closing;
  t.equal(rt.stats().running, 0);
});

t.test('an abort in the moment the worker is chosen is not lost', async (t) => {
  const rt = await runtime();
  t.teardown(() => rt.close());
  const outcomes: string[] = [];
  // abort after n microtask turns: n = 0 fell between the worker being chosen and the request
  // listening for its abort, and the request ran to the end
  for (let n = 0; n < 8; n++) {
    const ac = new AbortController();
    const run = collect(rt.sample(req(5, { signal: ac.signal }))).then(() => 'done', (e: Error) => e.name);
    let q = Promise.resolve();
    for (let i = 0; i < n; i++) q = q.then(() => {});
    void q.then(() => ac.abort());
    outcomes.push(await run);
  }
  t.same(outcomes, Array(8).fill('CancelledError'));
  t.equal(rt.stats().running, 0);
});

t.test('requests that start at once spread over the workers by images in flight', async (t) => {
  const rt = await runtime({ workers: 2 });
  t.teardown(() => rt.close());
  const [a, b] = rt.pool.workers;
  // one request of four images, then six of one, all started in the same tick: the choice of worker
  // and its registration happen together, so none of them sees a stale count (before, every
  // request of a burst saw both workers empty and took the first)
  const gens = [rt.sample({ ...req(30), count: 4 }), ...Array.from({ length: 6 }, (_, i) => rt.sample(req(20 + i)))];
  const firsts = gens.map((g) => g.next());
  await new Promise((resolve) => setImmediate(resolve));
  t.same([a.load, b.load].sort(), [5, 5], 'ten images, five per worker');
  t.same([a.requests.size, b.requests.size].sort(), [2, 5], 'the four-image request and one more, and five of one');
  await Promise.all(firsts);
  await Promise.all(gens.map(async (g) => { for await (const ev of g) void ev; }));
  t.same([a.load, b.load], [0, 0], 'the loads return to zero when the requests end');
});
