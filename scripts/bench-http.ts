// `npm run bench:http`: the service over HTTP against the runtime it wraps, in one run on the same
// models and machine. The service is the real server (dist/src/server.js, its own process,
// listening on a loopback port); the runtime is the same SpnRuntime, in this process, with the same
// workers. Each is driven by closed loops of c clients (a client sends its next request when its
// last one is answered), and the two take turns pass by pass, so a slow spell of the shared
// machine hits both. What HTTP adds is the ratio: routing, validation, JSON and base64, PNG
// encoding (every slice of a stream is two PNGs), the event stream, and the client's own parsing.
// Writes docs/bench-http.md (or --out) and prints the table.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_WORKERS } from '../src/config.js';
import { decodePlainPng, encodePng } from '../src/http/png.js';
import { createRuntime, type RawImage, type SpnRuntime } from '../src/runtime/index.js';
import { percentile } from './bench-report.js';
import { generatedAt, ROOT } from './graph-variants.js';
import { startServer } from './server-process.js';

const HELP = `npm run bench:http -- [flags]
  --model mu-fmnist         the model to sample and score
  --workers 2               inference workers on both sides (default: one per core, as the server's default)
  --concurrency 1,8,32      clients sampling at once
  --sample-images 16,48,160 images sampled per pass at each concurrency (each request one image)
  --likelihood-concurrency 1,32
  --likelihood-images 48,320
  --batch 64                images per /likelihood/batch request (and per runtime likelihoodBatch call)
  --batch-concurrency 4     clients sending batches at once
  --batch-requests 12       batch requests per pass
  --trials 2                passes; every figure is the best of its passes
  --out docs/bench-http.md  ('-': print only)`;

interface Opts {
  model: string; workers: number; concurrency: number[]; sampleImages: number[];
  likelihoodConcurrency: number[]; likelihoodImages: number[]; batch: number; batchConcurrency: number; batchRequests: number;
  trials: number; out: string;
}

function options(): Opts {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'mu-fmnist' }, workers: { type: 'string', default: '' },
      concurrency: { type: 'string', default: '1,8,32' }, 'sample-images': { type: 'string', default: '16,48,160' },
      'likelihood-concurrency': { type: 'string', default: '1,32' }, 'likelihood-images': { type: 'string', default: '48,320' },
      batch: { type: 'string', default: '64' }, 'batch-concurrency': { type: 'string', default: '4' }, 'batch-requests': { type: 'string', default: '12' },
      trials: { type: 'string', default: '2' }, out: { type: 'string', default: join(ROOT, 'docs', 'bench-http.md') },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const ints = (s: string, what: string) => {
    const l = s.split(',').map(Number);
    if (!l.length || l.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${what}: expected positive integers, got '${s}'`);
    return l;
  };
  const o: Opts = {
    model: values.model!, workers: values.workers ? ints(values.workers, 'workers')[0] : 0,
    concurrency: ints(values.concurrency!, 'concurrency'), sampleImages: ints(values['sample-images']!, 'sample-images'),
    likelihoodConcurrency: ints(values['likelihood-concurrency']!, 'likelihood-concurrency'),
    likelihoodImages: ints(values['likelihood-images']!, 'likelihood-images'),
    batch: ints(values.batch!, 'batch')[0], batchConcurrency: ints(values['batch-concurrency']!, 'batch-concurrency')[0],
    batchRequests: ints(values['batch-requests']!, 'batch-requests')[0],
    trials: ints(values.trials!, 'trials')[0], out: values.out!,
  };
  if (o.sampleImages.length !== o.concurrency.length) throw new Error('--sample-images needs one count per --concurrency entry');
  if (o.likelihoodImages.length !== o.likelihoodConcurrency.length) throw new Error('--likelihood-images needs one count per --likelihood-concurrency entry');
  return o;
}

/** c clients in closed loops until n jobs are done; each job's ms, and the seconds for all n. */
async function closedLoop(n: number, c: number, job: (i: number) => Promise<Answer>) {
  let next = 0;
  const lat: number[] = [];
  const first: number[] = [];
  const server: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(c, n) }, async () => {
    while (next < n) {
      const r = await job(next++);
      lat.push(r.ms);
      if (r.firstMs !== undefined) first.push(r.firstMs);
      if (r.serverMs !== undefined) server.push(r.serverMs);
    }
  }));
  return { seconds: (performance.now() - t0) / 1000, lat, first, server };
}

/** One request: its ms at the client, to its first slice event (streams), and inside the runtime
 * as the answer reports it (queue to done: `timings.totalMs`). */
interface Answer { ms: number; firstMs?: number; serverMs?: number }

/** CPU seconds (user + system) the process has used, all its threads: from /proc. */
/** CPU seconds of a process (all its threads), or of one of its threads (tid). */
function processCpuSeconds(pid: number, tid?: number): number {
  const f = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;   // utime, stime in clock ticks (USER_HZ = 100)
}

/** CPU seconds of a process's main thread (its thread id is the process id): for the service,
 * the thread that does all of HTTP, while the inference workers are threads of their own. */
const mainThreadCpuSeconds = (pid: number) => processCpuSeconds(pid, pid);

async function postJson(url: string, body: unknown): Promise<{ images: unknown[]; timings: { totalMs: number } }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as { images: unknown[]; timings: { totalMs: number } };
}

/** One image as an event stream: ms to the first slice event and to the done event. */
async function sampleStream(url: string, body: unknown): Promise<{ ms: number; firstMs: number }> {
  const t0 = performance.now();
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify(body) });
  if (r.status !== 200 || !r.body) throw new Error(`${url}: ${r.status}`);
  // Scans only what each chunk adds (and a few bytes before it, for a marker cut in two), so that
  // this client costs little of the two cores it shares with the server.
  const dec = new TextDecoder();
  let tail = '';
  let firstMs = NaN;
  let done = false;
  for await (const chunk of r.body) {
    const text = tail + dec.decode(chunk as Uint8Array, { stream: true });
    if (Number.isNaN(firstMs) && text.includes('event: slice')) firstMs = performance.now() - t0;
    if (text.includes('event: error')) throw new Error(`stream ended with an error: ${text.slice(text.indexOf('event: error'), text.indexOf('event: error') + 300)}`);
    if (text.includes('event: done')) done = true;
    // the done event's data ends with a blank line: the stream's end
    if (done && text.endsWith('\n\n')) break;
    tail = text.slice(-16);
  }
  if (!done) throw new Error('stream ended without a done event');
  return { ms: performance.now() - t0, firstMs };
}

async function sampleDirect(rt: SpnRuntime, model: string, seed: number): Promise<{ ms: number; firstMs: number }> {
  const t0 = performance.now();
  let firstMs = NaN;
  for await (const ev of rt.sample({ model, count: 1, seed, temperature: 1 })) {
    if (ev.type === 'slice' && Number.isNaN(firstMs)) firstMs = performance.now() - t0;
    if (ev.type === 'done') break;
  }
  return { ms: performance.now() - t0, firstMs };
}

/** ms of wall and of CPU (all threads) per call of `fn`, best of 3 trials of `n` calls. */
async function perCall(n: number, fn: () => unknown): Promise<{ ms: number; cpuMs: number }> {
  let best = { ms: Infinity, cpuMs: Infinity };
  for (let t = 0; t < 3; t++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    const c = process.cpuUsage(c0);
    const ms = (performance.now() - t0) / n;
    if (ms < best.ms) best = { ms, cpuMs: (c.user + c.system) / 1000 / n };
  }
  return best;
}

/** The service's own PNG encoder and plain-PNG decoder against sharp doing the same (as the service
 * did before: encode with the same settings; header read, then decode), on one sampled image and
 * one slice of it, one call at a time. */
async function pngCodecs(img: RawImage, S: number): Promise<string[]> {
  const slice: RawImage = { height: img.height / S, width: img.width / S, channels: img.channels, data: new Uint8Array((img.height / S) * (img.width / S) * img.channels) };
  for (let r = 0; r < slice.height; r++) {
    for (let c = 0; c < slice.width; c++) {
      for (let k = 0; k < img.channels; k++) slice.data[(r * slice.width + c) * img.channels + k] = img.data[((r * S) * img.width + c * S) * img.channels + k];
    }
  }
  const sharpEncode = (x: RawImage) => {
    const s = sharp(Buffer.from(x.data), { raw: { width: x.width, height: x.height, channels: x.channels as 1 | 3 } });
    return (x.channels === 1 ? s.toColourspace('b-w') : s).png({ compressionLevel: 3, adaptiveFiltering: false }).toBuffer();
  };
  const sharpDecode = async (png: Buffer) => {
    const meta = await sharp(png).metadata();
    const s = sharp(png, { failOn: 'truncated' });
    return (meta.channels === 1 ? s.toColourspace('b-w') : s).raw().toBuffer();
  };
  const rows: string[] = [];
  const row = (what: string, ours: { ms: number; cpuMs: number }, theirs: { ms: number; cpuMs: number }) =>
    rows.push(`| ${what} | ${ours.ms.toFixed(3)} (${ours.cpuMs.toFixed(3)}) | ${theirs.ms.toFixed(3)} (${theirs.cpuMs.toFixed(3)}) | **${(theirs.cpuMs / ours.cpuMs).toFixed(1)}×** |`);
  for (const [what, x] of [[`encode ${img.width}x${img.height}`, img], [`encode ${slice.width}x${slice.height} (a slice)`, slice]] as const) {
    row(what, await perCall(400, () => encodePng(x)), await perCall(400, () => sharpEncode(x)));
  }
  const png = encodePng(img);
  if (!decodePlainPng(png, 1e9)) throw new Error('the plain decoder did not take the encoder\'s PNG');
  row(`decode ${img.width}x${img.height}`, await perCall(400, () => decodePlainPng(png, 1e9)), await perCall(400, () => sharpDecode(png)));
  return rows;
}

interface Figures { perSec: number; p50: number; p95: number; first50?: number; server50?: number; cores: number; clientCores?: number; mainCores: number }
interface Row { what: string; c: number; images: number; direct: Figures; http: Figures }

function better(a: Figures | undefined, b: Figures): Figures {
  return !a || b.perSec > a.perSec ? b : a;
}

async function main(): Promise<void> {
  const o = options();
  const manifest = JSON.parse(readFileSync(join(ROOT, 'models', o.model, 'manifest.json'), 'utf8')) as { image: { height: number; width: number; channels: number }; subscaleFactor: number };
  const workers = o.workers || DEFAULT_WORKERS;
  const load = loadavg();
  const started = performance.now();
  process.stderr.write(`-- starting the server and the in-process runtime (${workers} workers each)\n`);
  const { proc, base } = await startServer({ DEFAULT_MODEL: o.model, WORKERS: String(workers), MAX_RUNNING: '64', MAX_QUEUE: '512' });
  const rt = await createRuntime({ modelsDir: join(ROOT, 'models'), provider: 'cpu', workers, threads: 1, maxQueue: 512, maxRunning: 64 });
  const rows = new Map<string, Row>();
  let codecRows: string[] = [];
  try {
    // Images to score: drawn once from the model, sent as PNG over HTTP and raw to the runtime.
    const raws: RawImage[] = [];
    for (let s = 0; s < 16; s++) {
      for await (const ev of rt.sample({ model: o.model, count: 1, seed: 1000 + s, temperature: 1 })) if (ev.type === 'done') raws.push(ev.images[0]);
    }
    const pngs = raws.map(encodePng);
    const { height, width, channels } = manifest.image;
    if (raws[0].height !== height || raws[0].width !== width || raws[0].channels !== channels) throw new Error('sampled image does not match the manifest');
    codecRows = await pngCodecs(raws[0], manifest.subscaleFactor);

    type Side = 'direct' | 'http';
    /** n requests by c clients; each request carries `per` images (rates are in images) */
    const measure = async (key: string, what: string, c: number, n: number, side: Side, job: (i: number) => Promise<Answer>, per = 1) => {
      const server0 = processCpuSeconds(proc.pid!);
      const main0 = mainThreadCpuSeconds(side === 'http' ? proc.pid! : process.pid);
      const self0 = process.cpuUsage();
      const r = await closedLoop(n, c, job);
      const serverCpu = processCpuSeconds(proc.pid!) - server0;
      const mainCpu = mainThreadCpuSeconds(side === 'http' ? proc.pid! : process.pid) - main0;
      const self = process.cpuUsage(self0);
      const selfCpu = (self.user + self.system) / 1e6;
      const fig: Figures = {
        perSec: (n * per) / r.seconds, p50: percentile(r.lat, 50), p95: percentile(r.lat, 95),
        first50: r.first.length ? percentile(r.first, 50) : undefined, server50: r.server.length ? percentile(r.server, 50) : undefined,
        // the runtime side works in this process; the HTTP side in the server, with this process as its client
        cores: (side === 'http' ? serverCpu : selfCpu) / r.seconds, clientCores: side === 'http' ? selfCpu / r.seconds : undefined,
        mainCores: mainCpu / r.seconds,
      };
      const row = rows.get(key) ?? { what, c, images: n * per, direct: undefined as unknown as Row['direct'], http: undefined as unknown as Row['http'] };
      row[side] = better(row[side], fig);
      rows.set(key, row);
      process.stderr.write(`   ${what.padEnd(28)} c=${String(c).padEnd(3)} ${side.padEnd(6)} ${fig.perSec.toFixed(1)} images/s, p50 ${fig.p50.toFixed(1)} ms\n`);
    };

    // one warm-up pass of each kind, not counted
    await closedLoop(8, 8, (i) => sampleDirect(rt, o.model, i));
    await closedLoop(8, 8, async (i) => { const t0 = performance.now(); await postJson(`${base}/sample`, { model: o.model, seed: i }); return { ms: performance.now() - t0 }; });

    let seed = 0;
    for (let t = 0; t < o.trials; t++) {
      process.stderr.write(`-- pass ${t + 1} of ${o.trials}\n`);
      const sides: Side[] = t % 2 ? ['http', 'direct'] : ['direct', 'http'];
      for (const [k, c] of o.concurrency.entries()) {
        const n = o.sampleImages[k];
        for (const side of sides) {
          if (side === 'direct') {
            const s0 = seed; seed += n;
            await measure(`sample-${c}`, 'sample (JSON)', c, n, side, (i) => sampleDirect(rt, o.model, s0 + i));
            const s1 = seed; seed += n;
            await measure(`stream-${c}`, 'sample (event stream)', c, n, side, (i) => sampleDirect(rt, o.model, s1 + i));
          } else {
            const s0 = seed; seed += n;
            await measure(`sample-${c}`, 'sample (JSON)', c, n, side, async (i) => {
              const t0 = performance.now();
              const r = await postJson(`${base}/sample`, { model: o.model, seed: s0 + i });
              if (r.images.length !== 1) throw new Error('expected one image');
              return { ms: performance.now() - t0, serverMs: r.timings.totalMs };
            });
            const s1 = seed; seed += n;
            await measure(`stream-${c}`, 'sample (event stream)', c, n, side, (i) => sampleStream(`${base}/sample`, { model: o.model, seed: s1 + i }));
          }
        }
      }
      for (const [k, c] of o.likelihoodConcurrency.entries()) {
        const n = o.likelihoodImages[k];
        for (const side of sides) {
          await measure(`likelihood-${c}`, 'likelihood (PNG upload)', c, n, side, async (i) => {
            const t0 = performance.now();
            if (side === 'direct') {
              await rt.likelihood({ model: o.model, image: raws[i % raws.length] });
            } else {
              const r = await fetch(`${base}/likelihood?model=${o.model}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(pngs[i % pngs.length]) });
              if (r.status !== 200) throw new Error(`/likelihood: ${r.status} ${await r.text()}`);
              const j = (await r.json()) as { bitsPerDim: number; timings: { totalMs: number } };
              if (!(j.bitsPerDim > 0)) throw new Error('no bits/dim in the answer');
              return { ms: performance.now() - t0, serverMs: j.timings.totalMs };
            }
            return { ms: performance.now() - t0 };
          });
        }
      }
      // scoring many images per request: /likelihood/batch against the runtime's likelihoodBatch
      const B = o.batch;
      const pick = (i: number) => Array.from({ length: B }, (_, k) => (i * B + k) % raws.length);
      const b64 = pngs.map((p) => p.toString('base64'));
      for (const side of sides) {
        await measure('likelihood-batch', `likelihood (batch of ${B}, JSON)`, o.batchConcurrency, o.batchRequests, side, async (i) => {
          const t0 = performance.now();
          if (side === 'direct') {
            await rt.likelihoodBatch({ model: o.model, images: pick(i).map((k) => raws[k]) });
            return { ms: performance.now() - t0 };
          }
          const j = await postJson(`${base}/likelihood/batch`, { model: o.model, images: pick(i).map((k) => b64[k]) }) as unknown as { results: unknown[]; timings: { totalMs: number } };
          if (j.results.length !== B) throw new Error(`/likelihood/batch: ${j.results.length} results for ${B} images`);
          return { ms: performance.now() - t0, serverMs: j.timings.totalMs };
        }, B);
      }
    }
  } finally {
    await rt.close();
    proc.kill('SIGTERM');
  }

  const wall = (performance.now() - started) / 1000;
  const f = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(d));
  const lines = [
    '# Benchmark: the service over HTTP against the runtime it wraps',
    '',
    `Generated by \`npm run bench:http${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${generatedAt()} (${wall.toFixed(0)} s wall), model \`${o.model}\`, ${workers} inference workers on each side, ${o.trials} passes (every figure is the best of its passes; the two sides take turns pass by pass). Load average at start ${load.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    '- **runtime**: `SpnRuntime.sample` / `.likelihood` called in the benchmark process (no HTTP; for the event-stream rows the same call, timed to its first slice event)',
    '- **HTTP**: the server (`dist/src/server.js`, its own process, `LOG_LEVEL=warn`) on a loopback port, driven by `fetch` clients in the benchmark process: `POST /sample` answering JSON (the image as base64 PNG), `POST /sample` as an event stream (every slice event carries two PNGs, the slice and the image so far; timed until the `done` event), `POST /likelihood` with a PNG body (the images were sampled from the model first), `POST /likelihood/batch` with a JSON body of base64 PNGs',
    '- every request is one image, but for the batch row (one request scores that many images; its runtime side is `SpnRuntime.likelihoodBatch`); c clients each send their next request when the last is answered; images/s counts images, latencies are per request',
    '- "in runtime": the request\'s time inside the server\'s runtime as its answer reports it (`timings.totalMs`, queue to result); the rest of the HTTP latency is HTTP: parsing, validation, PNG and JSON, the event stream, the client',
    '- "cores busy": CPU seconds per wall second of the process doing the work (the benchmark process for the runtime, the server process for HTTP, all threads); "client": the benchmark process while it drives the server, on the same two cores; "main thread": the same for that process\'s main thread alone (the service\'s HTTP, routing, PNG and JSON; for the runtime side, the event delivery and the closed-loop clients); the rest is the inference workers and the runtime\'s helper threads (garbage collection, libuv)',
    '',
    '| request | clients | images | runtime images/s | HTTP images/s | HTTP / runtime | p50 ms runtime / HTTP (in runtime) | p95 ms runtime / HTTP | first slice p50 ms runtime / HTTP | cores busy runtime / HTTP (client) | main thread cores runtime / HTTP |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...[...rows.values()].map((r) => `| ${r.what} | ${r.c} | ${r.images} | ${f(r.direct.perSec)} | ${f(r.http.perSec)} | **${f(r.http.perSec / r.direct.perSec, 2)}** | ${f(r.direct.p50)} / ${f(r.http.p50)}${r.http.server50 === undefined ? '' : ` (${f(r.http.server50)})`} | ${f(r.direct.p95)} / ${f(r.http.p95)} | ${r.what.includes('stream') ? `${f(r.direct.first50)} / ${f(r.http.first50)}` : ''} | ${f(r.direct.cores, 2)} / ${f(r.http.cores, 2)} (${f(r.http.clientCores, 2)}) | ${f(r.direct.mainCores, 2)} / ${f(r.http.mainCores, 2)} |`),
    '',
    '## PNG',
    '',
    'The service encodes its PNGs (answers, and two per slice event) with its own encoder and decodes plain PNG uploads with its own decoder (`src/http/png.ts`); before, sharp did both. Here each against sharp doing the same work, one call at a time in the benchmark process: ms per call (CPU ms, all threads: sharp works on libuv\'s thread pool), best of 3 trials of 400 calls.',
    '',
    '| work | this service ms (CPU) | sharp ms (CPU) | sharp / this service, CPU |',
    '|---|---|---|---|',
    ...codecRows,
    '',
  ];
  const md = lines.join('\n');
  process.stdout.write(md);
  if (o.out !== '-') {
    writeFileSync(o.out, md);
    process.stderr.write(`-- wrote ${o.out}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
