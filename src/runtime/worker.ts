// Worker thread entry: owns the ONNX sessions and the batching engine; the main thread never
// calls run(). Graph timings are sent back in small bundles rather than one message per run.
import { parentPort } from 'node:worker_threads';
import { Engine, engineModel, type EngineModel } from './engine.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { createSessions, firstContexts, releaseSessions } from './sessions.js';

const port = parentPort!;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const models = new Map<string, EngineModel>();
let pendingRuns: Extract<FromWorker, { type: 'runs' }>['runs'] = [];
let pendingArrivals: Extract<FromWorker, { type: 'runs' }>['arrivals'] = [];
let flushTimer: NodeJS.Timeout | null = null;

function flushRuns(): void {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = null;
  if (pendingRuns.length || pendingArrivals.length) post({ type: 'runs', runs: pendingRuns, arrivals: pendingArrivals });
  pendingRuns = [];
  pendingArrivals = [];
}

/** Sends what is pending within 100 ms, or at once past 1000 runs. */
function scheduleFlush(): void {
  if (pendingRuns.length >= 1000) flushRuns();
  else flushTimer ??= setTimeout(flushRuns, 100);
}

function arrived(model: string, lanes: number): void {
  pendingArrivals.push({ model, lanes, atMs: performance.timeOrigin + performance.now() });
  scheduleFlush();
}

let engine!: Engine;
const events: ConstructorParameters<typeof Engine>[0] = {
  slice: (request, index, stage, slice, values, image) =>
    post({ type: 'slice', request, index, stage, slice, values, image }, [values.buffer as ArrayBuffer, image.buffer as ArrayBuffer]),
  stage: (request, index, stage) => post({ type: 'stage', request, index, stage }),
  // run timings go out before the message that ends a request, so its metrics are complete
  // when its answer is
  sampleDone: (request, index, image, nats) => { flushRuns(); post({ type: 'sample-done', request, index, image, nats }); },
  scoreDone: (request, index, result) => { flushRuns(); post({ type: 'score-done', request, index, result }); },
  failed: (request, message) => { flushRuns(); post({ type: 'failed', request, message }); },
  run: (model, stage, graph, seconds, batch) => {
    pendingRuns.push({ model, stage, graph, seconds, batch, endMs: performance.timeOrigin + performance.now() });
    scheduleFlush();
  },
};

/** the models are loading (the 'init' message's work) */
let loading = false;
/** asked to close: a load in progress stops at its next graph and then leaves */
let closing = false;

/** Ends the engine's work, releases every session and lets the thread exit. */
async function leave(): Promise<void> {
  await engine.stop();
  flushRuns();
  for (const m of models.values()) await releaseSessions(m.sessions);
  port.close();
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'init':
      engine = new Engine(events, msg.decode, msg.quantum);
      loading = true;
      void (async () => {
        try {
          const providers: Record<string, { provider: 'cuda' | 'cpu'; note?: string }> = {};
          for (const m of msg.models) {
            const sessions = await createSessions(m, msg.provider, msg.threads, () => closing);
            models.set(m.manifest.name, engineModel(m.manifest, sessions, await firstContexts(m, sessions)));
            providers[m.manifest.name] = { provider: sessions.provider, note: sessions.providerNote };
          }
          if (!closing) post({ type: 'ready', providers });
        } catch (err) {
          if (!closing) post({ type: 'init-failed', message: (err as Error).message });
        } finally {
          loading = false;
          if (closing) void leave();
        }
      })();
      break;
    case 'sample': {
      const model = models.get(msg.model)!;
      for (const lane of msg.lanes) engine.addSample(model, { request: msg.request, ...lane });
      arrived(msg.model, msg.lanes.length);
      break;
    }
    case 'score':
      msg.images.forEach((image, index) => engine.addScore(models.get(msg.model)!, msg.request, index, image, msg.perPixel));
      arrived(msg.model, msg.images.length);
      break;
    case 'cancel':
      engine.cancel(msg.request);
      break;
    case 'close':
      // terminate() during a native run aborts the whole process, so workers leave on their own;
      // one still loading leaves after the graph it is loading (the load's end calls leave())
      if (closing) break;
      closing = true;
      if (!loading) void leave();
      break;
    case 'crash':
      throw new Error('inference worker crashed (test hook)');
  }
});
