// `npm run soak`: the real server under a long mixed load, round after round, to show that its
// memory levels off and that nothing fails. The server is dist/src/server.js in its own process;
// c clients keep sending, in turn: JSON samples of several images, event streams, streams hung up
// 5 ms in, samples whose deadline passes (504), PNG uploads scored with a per-pixel map, batches of
// 16 images scored in one request, multipart batches of 4, uploads stalled half-way (cut at the
// server's receive timeout, 408), Open Inference Protocol requests of 8 raw images as binary
// tensors, a body the schema refuses and an unknown model.
// After each round: the server's resident memory (from /proc, all its threads: the inference
// workers are threads of the process), its main thread's V8 heap (/metrics), and the running and
// queued gauges once the round's requests are answered. Before and after: one seeded sample, which
// must come back byte for byte the same. At the end SIGTERM, and the server must exit 0.
// Exits 1 on an unexpected status (any 5xx but the deadline kinds' 504), a changed sample or a
// failed shutdown.
// Writes docs/soak.md (or --out).
import { once } from 'node:events';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { generatedAt, ROOT } from './graph-variants.js';
import { startServer } from './server-process.js';

const HELP = `npm run soak -- [flags]
  --rounds 8          rounds of load
  --seconds 15        length of a round
  --concurrency 16    clients sending at once
  --out docs/soak.md  ('-': print only)`;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '8' }, seconds: { type: 'string', default: '15' },
    concurrency: { type: 'string', default: '16' }, out: { type: 'string', default: join(ROOT, 'docs', 'soak.md') },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const rounds = Number(values.rounds), seconds = Number(values.seconds), clients = Number(values.concurrency);
for (const [k, v] of Object.entries({ rounds, seconds, concurrency: clients })) {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${k}: expected a positive integer`);
}

const json = { 'content-type': 'application/json' };
const stream = { ...json, accept: 'text/event-stream' };

/** The soak server's RECEIVE_TIMEOUT_MS: a stalled upload is cut after this long. */
const RECEIVE_TIMEOUT_MS = 1000;

/** Sends the first half of a valid upload on a raw socket and waits: the server must answer 408
 * at its receive timeout and close the connection. Answers that status as a Response. */
function stalledUpload(base: string, png: Uint8Array): Promise<Response> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let text = '';
    socket.on('data', (d) => { text += d.toString('latin1'); });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? -1);
      resolve(new Response(null, { status: status >= 200 ? status : 599 }));
    });
    socket.on('connect', () => {
      socket.write(`POST /likelihood HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`);
      socket.write(png.subarray(0, png.length >> 1));
    });
  });
}

/** One kind of request and the one status it must get. */
interface Kind { name: string; status: number; send: (base: string, i: number) => Promise<Response> }

function kinds(png: Uint8Array<ArrayBuffer>, colour: Uint8Array = new Uint8Array()): Kind[] {
  const b64 = Buffer.from(png).toString('base64');
  const colourB64 = Buffer.from(colour).toString('base64');
  const post = (base: string, path: string, headers: Record<string, string>, body: RequestInit['body'], signal?: AbortSignal) =>
    fetch(`${base}${path}`, { method: 'POST', headers, body, signal });
  return [
    { name: 'sample, JSON, 4 images (tiny-c3)', status: 200, send: (b, i) => post(b, '/sample', json, JSON.stringify({ model: 'tiny-c3', count: 4, seed: i })) },
    { name: 'sample, event stream (mu-fmnist)', status: 200, send: (b, i) => post(b, '/sample', stream, JSON.stringify({ seed: i })) },
    {
      name: 'sample, upscaling a 40x36 colour JPEG converted to the model (mu-fmnist)', status: 200,
      send: (b, i) => post(b, '/sample', json, JSON.stringify({ seed: i, condition: { mode: 'upscale', image: colourB64, convert: { resize: true, grayscale: true } } })),
    },
    { name: 'likelihood, PNG, per-pixel map', status: 200, send: (b) => post(b, '/likelihood?perPixel=true', { 'content-type': 'image/png' }, png) },
    { name: 'likelihood batch, 16 images (JSON)', status: 200, send: (b) => post(b, '/likelihood/batch', json, JSON.stringify({ images: Array.from({ length: 16 }, () => b64) })) },
    {
      name: 'likelihood batch, 4 images (multipart)', status: 200,
      send: (b) => {
        const form = new FormData();
        for (let k = 0; k < 4; k++) form.append('images', new Blob([png], { type: 'image/png' }), `${k}.png`);
        return fetch(`${b}/likelihood/batch`, { method: 'POST', body: form });
      },
    },
    {
      name: 'Open Inference Protocol infer, 8 raw images as binary tensors (mu-fmnist)', status: 200,
      send: (b, i) => {
        const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [8, 28, 28, 1], datatype: 'UINT8', parameters: { binary_data_size: 8 * 784 } }] }));
        const pixels = Buffer.from(Array.from({ length: 8 * 784 }, (_, k) => (k * 7 + i) % 256));
        return post(b, '/v2/models/mu-fmnist/infer', { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, Buffer.concat([header, pixels]));
      },
    },
    {
      // a browser's EventSource whose connection dropped after five events: the rest of the stream
      name: 'sample, GET event stream resumed after event 5 (Last-Event-ID)', status: 200,
      send: (b, i) => fetch(`${b}/sample?seed=${i}`, { headers: { accept: 'text/event-stream', 'last-event-id': `${i}:5` } }),
    },
    {
      // a 1 µs deadline (1 ms): 64 images always take longer
      name: 'Open Inference Protocol infer, 64 images, parameters.timeout 1 µs', status: 504,
      send: (b) => post(b, '/v2/models/mu-fmnist/infer', json, JSON.stringify({
        parameters: { timeout: 1 }, inputs: [{ name: 'image', shape: [64, 28, 28, 1], datatype: 'UINT8', data: Array.from({ length: 64 * 784 }, (_, k) => k % 256) }],
      })),
    },
    { name: `likelihood, upload stalled half-way (408 at RECEIVE_TIMEOUT_MS=${RECEIVE_TIMEOUT_MS})`, status: 408, send: (b) => stalledUpload(b, png) },
    {
      name: 'sample, event stream hung up at 5 ms', status: 0,
      send: (b, i) => post(b, '/sample', stream, JSON.stringify({ model: 'spn8-fmnist', seed: i }), AbortSignal.timeout(5)),
    },
    // 16 MU images take far longer than 20 ms: the deadline always passes, queued or running
    { name: 'sample, JSON, 16 images, 20 ms deadline', status: 504, send: (b, i) => post(b, '/sample', json, JSON.stringify({ count: 16, seed: i, timeoutMs: 20 })) },
    { name: 'sample, schema violation (count 99)', status: 400, send: (b) => post(b, '/sample', json, '{"count":99}') },
    { name: 'sample, unknown model', status: 404, send: (b) => post(b, '/sample', json, '{"model":"nope"}') },
  ];
}

/** The server's resident memory in MB, all threads. */
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function seededSample(base: string): Promise<Buffer> {
  const r = await fetch(`${base}/sample`, { method: 'POST', headers: { ...json, accept: 'image/png' }, body: '{"seed":7}' });
  if (r.status !== 200) throw new Error(`seeded sample: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

interface Round { requests: number; wrong: string[]; rss: number; heap: number; running: number; queued: number }

async function main(): Promise<void> {
  const load = loadavg()[0];
  const started = performance.now();
  const { proc, base } = await startServer({ LOG_LEVEL: 'error', RECEIVE_TIMEOUT_MS: String(RECEIVE_TIMEOUT_MS) });
  const exited = once(proc, 'exit').then(([code]) => code as number | null);
  const rows: Round[] = [];
  let before: Buffer, after: Buffer, rssStart: number;
  try {
    before = await seededSample(base);
    rssStart = rssMb(proc.pid!);
    const colour = await sharp(Buffer.from(Array.from({ length: 40 * 36 * 3 }, (_, k) => (k * 37) % 256)), { raw: { width: 40, height: 36, channels: 3 } }).jpeg().toBuffer();
    const list = kinds(new Uint8Array(before), colour);
    let next = 0;
    for (let r = 0; r < rounds; r++) {
      const row: Round = { requests: 0, wrong: [], rss: 0, heap: 0, running: 0, queued: 0 };
      const end = performance.now() + seconds * 1000;
      await Promise.all(Array.from({ length: clients }, async () => {
        while (performance.now() < end) {
          const i = next++;
          const kind = list[i % list.length];
          let status: number;
          try {
            const res = await kind.send(base, i);
            await res.arrayBuffer();
            status = res.status;
          } catch (err) {
            // the hung-up streams end here, as an abort on our side
            status = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError' ? 0 : -1;
          }
          row.requests++;
          // a hang-up may also come too late to abort anything: the stream was already answered
          if (status !== kind.status && !(kind.status === 0 && status === 200)) row.wrong.push(`${kind.name}: ${status}`);
        }
      }));
      // the hung-up requests leave their places as the server notices the hang-ups
      for (let k = 0; k < 100 && (await metric(base, 'spn_running_requests')) > 0; k++) await sleep(20);
      row.running = await metric(base, 'spn_running_requests');
      row.queued = await metric(base, 'spn_queue_length');
      row.rss = rssMb(proc.pid!);
      row.heap = (await metric(base, 'nodejs_heap_size_used_bytes')) / 2 ** 20;
      rows.push(row);
      console.error(`round ${r + 1}/${rounds}: ${row.requests} requests, ${row.wrong.length} unexpected, RSS ${row.rss.toFixed(0)} MB, `
        + `main-thread heap ${row.heap.toFixed(1)} MB, running ${row.running}, queued ${row.queued}`);
    }
    after = await seededSample(base);
  } finally {
    proc.kill('SIGTERM');
  }
  const code = await Promise.race([exited, sleep(30_000, undefined, { ref: false }).then(() => 'no exit within 30 s')]);
  const wall = (performance.now() - started) / 1000;

  const total = rows.reduce((a, r) => a + r.requests, 0);
  const wrong = rows.flatMap((r) => r.wrong);
  const same = before.equals(after);
  const f = (x: number, d = 0) => x.toFixed(d);
  const names = kinds(new Uint8Array()).map((k) => k.name);
  const lines = [
    '# Soak: the server under a long mixed load',
    '',
    `Generated by \`npm run soak -- --rounds ${rounds} --seconds ${seconds} --concurrency ${clients}\` on ${generatedAt()} `
      + `(${f(wall)} s); 1-minute load average ${load.toFixed(2)} at start. The real server (its own process, the shipped `
      + `models, CPU provider, default configuration but RECEIVE_TIMEOUT_MS=${RECEIVE_TIMEOUT_MS}) under ${clients} clients in closed loops, each sending the kinds below in turn; `
      + 'after each round, the server process\'s resident memory (all threads: the inference workers are threads of it), its main '
      + 'thread\'s V8 heap, and the running and queued gauges once the round\'s requests are answered (hung-up streams leave as '
      + 'the server notices the hang-up).',
    '',
    ...names.map((n) => `- ${n}`),
    '',
    '| round | requests | unexpected answers | resident MB | main-thread heap MB | running | queued |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r, k) => `| ${k + 1} | ${r.requests} | ${r.wrong.length} | ${f(r.rss)} | ${f(r.heap, 1)} | ${r.running} | ${r.queued} |`),
    '',
    `- Requests: ${total} in all; unexpected answers (a failed connection, or another status than the kind's: any 5xx but the deadline kinds' 504): ${wrong.length}`
      + (wrong.length ? ` (${[...new Set(wrong)].slice(0, 5).join('; ')})` : ''),
    `- Resident memory: ${f(rssStart!)} MB after start-up, ${f(rows[0].rss)} MB after round 1, ${f(rows.at(-1)!.rss)} MB after the last `
      + `(highest ${f(Math.max(...rows.map((r) => r.rss)))} MB)`,
    `- The seed-7 sample before and after: ${same ? 'the same bytes' : 'DIFFERENT'}`,
    `- SIGTERM: ${typeof code === 'number' ? `exit ${code}` : code}`,
    '',
  ];
  const md = lines.join('\n');
  if (values.out === '-') console.log(md);
  else {
    writeFileSync(values.out!, md);
    console.log(`wrote ${values.out}`);
  }
  if (wrong.length || !same || code !== 0) process.exitCode = 1;
}

await main();
