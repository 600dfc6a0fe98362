// Shared by the HTTP tests: a config pointing at the tiny test models, a real listening server,
// an SSE parser for fetch bodies, and PNG decoding.
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import zlib from 'node:zlib';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config.js';
import { buildApp, type AppDeps } from '../../src/app.js';
import { TINY_MODELS_DIR } from '../runtime/fixtures.js';

/** The repository root, from dist/test/http/ (compiled) */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** only the tiny test models, whatever else models/ ships */
export const MODELS_DIR = TINY_MODELS_DIR;

export function testConfig(env: Record<string, string | number> = {}): Config {
  return loadConfig({
    MODELS_DIR,
    DEFAULT_MODEL: 'tiny-c1',
    EXECUTION_PROVIDER: 'cpu',
    WORKERS: 1,
    LOG_LEVEL: 'silent',
    PORT: 0,
    HOST: '127.0.0.1',
    ...env,
  });
}

/** An app with the real runtime on the tiny models, loaded and warmed up. */
export async function readyApp(env: Record<string, string | number> = {}, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(env), deps);
  await app.ready();
  await app.runtimeLoaded();
  return app;
}

/** The same, listening on a free port; answers its base URL. */
export async function listening(env: Record<string, string | number> = {}, deps: AppDeps = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = await readyApp(env, deps);
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: address };
}

export interface SseEvent {
  event: string;
  data: string;
  /** the event's `id:` line, when it has one */
  id?: string;
}

/** Reads an event stream, calling onEvent for each event; answers all events and the comments seen. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (ev: SseEvent) => boolean | void = () => {},
): Promise<{ events: SseEvent[]; comments: string[] }> {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) {
        const ev = { event, data: data.join('\n') };
        events.push(ev);
        // onEvent answers true to stop reading (and hang up)
        if (onEvent(ev) === true) {
          await reader.cancel();
          return { events, comments };
        }
      }
    }
  }
  return { events, comments };
}

export function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n').filter((l) => !l.startsWith(':') && l);
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      const id = lines.find((l) => l.startsWith('id: '))?.slice(4);
      return event ? { event, data, ...(id === undefined ? {} : { id }) } : undefined;
    })
    .filter((e): e is SseEvent => !!e);
}

export interface Decoded {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
  format: string;
}

/** Decodes a PNG (base64 or bytes), keeping a grey image at one channel. */
export async function decodePng(png: string | Buffer): Promise<Decoded> {
  const bytes = typeof png === 'string' ? Buffer.from(png, 'base64') : png;
  const meta = await sharp(bytes).metadata();
  const s = sharp(bytes);
  const { data, info } = await ((meta.channels ?? 3) <= 2 ? s.toColourspace('b-w') : s).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data, format: meta.format ?? '' };
}

export async function rawToPng(data: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  let s = sharp(Buffer.from(data), { raw: { width, height, channels } });
  if (channels === 1) s = s.toColourspace('b-w');
  return format === 'png' ? s.png().toBuffer() : format === 'jpeg' ? s.jpeg({ quality: 95 }).toBuffer() : s.webp({ lossless: true }).toBuffer();
}

/** Reads one sample (value only, no labels beyond those given) from Prometheus text. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real PNG whose header claims width x height (CRC fixed up), so only its header is big. */
export async function bombPng(width: number, height: number): Promise<Buffer> {
  const b = Buffer.from(await rawToPng(Uint8Array.from({ length: 64 }, (_, i) => i), 8, 8, 1));
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt32BE(zlib.crc32(b.subarray(12, 29)) >>> 0, 29);
  return b;
}

/** A multipart/form-data body for app.inject(): text fields, then file parts (several may share a name). */
export function multipart(fields: Record<string, string>, ...files: { name: string; type: string; bytes: Buffer }[]): { headers: Record<string, string>; payload: Buffer } {
  const boundary = '----spn-test-boundary';
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  files.forEach((file, i) => {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; filename="f${i}"\r\nContent-Type: ${file.type}\r\n\r\n`), file.bytes, Buffer.from('\r\n'));
  });
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: Buffer.concat(parts) };
}

/** What a raw connection got back: the bytes (latin1), whether the connection closed (false: still
 * open after the guard, then destroyed), and after how long. */
export interface RawOutcome { text: string; closed: boolean; closedAfterMs: number }

/** Writes `chunks` to a raw TCP connection to `url`, `gapMs` apart, then waits for the server to
 * close it ('wait'), half-closes it ('end'), or resets it `resetAfterMs` later ('reset'); resolves
 * once it is closed, or after `guardMs` marked not closed. */
export function rawExchange(
  url: string, chunks: (string | Buffer)[],
  { finish = 'wait', gapMs = 0, resetAfterMs = 0, guardMs = 5000 }: { finish?: 'wait' | 'end' | 'reset'; gapMs?: number; resetAfterMs?: number; guardMs?: number } = {},
): Promise<RawOutcome> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    const started = Date.now();
    let text = '';
    let done = false;
    const settle = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      socket.destroy();
      resolve({ text, closed, closedAfterMs: Date.now() - started });
    };
    const guard = setTimeout(() => settle(false), guardMs);
    socket.on('data', (d) => { text += d.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => settle(true));
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (socket.destroyed) return;
        socket.write(c);
        if (gapMs) await sleep(gapMs);
      }
      if (finish === 'end') socket.end();
      else if (finish === 'reset') {
        if (resetAfterMs) await sleep(resetAfterMs);
        socket.resetAndDestroy();
        settle(true);
      }
    });
  });
}

/** A seeded generator in [0, 1) (Park-Miller), for the fuzz tests' reproducible sequences. */
export function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
}
