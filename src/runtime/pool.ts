// Worker threads that own the ONNX sessions. A worker that dies is replaced; only the requests it
// was running fail, with a clear error.
import { Worker } from 'node:worker_threads';
import { CancelledError, ModelLoadError, NoWorkerError, WorkerFailedError } from './errors.js';
import type { LoadedModel } from './manifest.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { DEFAULT_QUANTUM, type ExecutionProvider, type ProviderChoice, type RuntimeOptions } from './types.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);

export type Providers = Record<string, { provider: ExecutionProvider; note?: string }>;

interface Handler {
  message(msg: FromWorker): void;
  fail(err: Error): void;
}

export class PoolWorker {
  readonly requests = new Map<number, Handler & { weight: number }>();
  /** images of the requests in flight here */
  load = 0;
  ready = false;
  /** it became ready once (a worker that never did is not replaced when it exits) */
  served = false;

  constructor(readonly worker: Worker) {}

  post(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(msg, transfer);
  }
}

export class WorkerPool {
  readonly workers: PoolWorker[] = [];
  providers: Providers = {};
  private closing = false;
  /** replacements loading now */
  private replacing = 0;
  /** why the last replacement failed to start, until one starts (it is retried with a backoff) */
  private replaceFailure: Error | null = null;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly models: LoadedModel[],
    private readonly opts: Pick<RuntimeOptions, 'workers' | 'threads' | 'logger' | 'decode' | 'quantum' | 'observer'> & { provider: ProviderChoice },
    private readonly onRuns: (msg: Extract<FromWorker, { type: 'runs' }>) => void,
  ) {}

  async start(): Promise<void> {
    const started = await Promise.allSettled(Array.from({ length: this.opts.workers }, () => this.spawn()));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await this.close();
      throw (failed as PromiseRejectedResult).reason;
    }
  }

  private readyWaiters: (() => void)[] = [];

  /** Registers a request (weight: its images) with the ready worker that has the fewest images in
   * flight, and returns that worker; waits (up to timeoutMs, or until `signal` aborts) while a
   * replacement starts. The choice and the registration happen together, so requests that start at
   * once spread over the workers. */
  async acquire(request: number, handler: Handler, weight: number, signal?: AbortSignal, timeoutMs = 30000): Promise<PoolWorker> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // an abort before the choice, or while waiting for a replacement, must not be missed (the
      // caller listens for aborts only once it has its worker)
      if (signal?.aborted) throw new CancelledError(signal.reason);
      if (this.closing) throw new WorkerFailedError('the runtime closed while this request waited for an inference worker');
      let best: PoolWorker | undefined;
      for (const w of this.workers) if (w.ready && (!best || w.load < best.load)) best = w;
      if (best) {
        best.requests.set(request, { ...handler, weight });
        best.load += weight;
        return best;
      }
      // nothing is loading that could serve it soon: say why at once rather than wait it out
      if (!this.replacing && this.replaceFailure) {
        throw new NoWorkerError(`no inference worker is ready: the replacement failed to start (${this.replaceFailure.message}); retrying`);
      }
      if (Date.now() >= deadline) throw new NoWorkerError('no inference worker is ready');
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        signal?.addEventListener('abort', done, { once: true });
        this.readyWaiters.push(done);
      });
    }
  }

  unregister(w: PoolWorker, request: number): void {
    const h = w.requests.get(request);
    if (!h) return;
    w.load -= h.weight;
    w.requests.delete(request);
  }

  private spawn(): Promise<PoolWorker> {
    const worker = new Worker(WORKER_URL);
    const pw = new PoolWorker(worker);
    const threadId = worker.threadId;   // -1 once it has exited
    this.workers.push(pw);
    return new Promise((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            pw.ready = true;
            pw.served = true;
            this.providers = msg.providers;
            resolve(pw);
            for (const wake of this.readyWaiters.splice(0)) wake();
            return;
          case 'init-failed':
            reject(new ModelLoadError(msg.message));
            void worker.terminate();
            return;
          case 'runs':
            this.onRuns(msg);
            return;
          default:
            pw.requests.get(msg.request)?.message(msg);
        }
      });
      worker.on('error', (err) => {
        pw.ready = false;
        this.opts.logger?.error({ err, worker: threadId }, 'inference worker crashed');
      });
      worker.on('exit', (code) => {
        pw.ready = false;
        const i = this.workers.indexOf(pw);
        if (i >= 0) this.workers.splice(i, 1);
        const err = new WorkerFailedError(this.closing ? 'the runtime closed while this request was running'
          : `inference worker ${threadId} exited (code ${code}) while running this request`);
        for (const h of pw.requests.values()) h.fail(err);
        pw.requests.clear();
        pw.load = 0;
        reject(err);
        // Only a worker that was serving is replaced: one that failed to start (its models did not
        // load) would fail again, and replacing it started workers over and over, logging each
        if (!this.closing && pw.served) {
          this.opts.logger?.warn({ worker: threadId, code }, 'replacing inference worker');
          this.opts.observer?.workerExited?.(code);
          this.replace(0);
        }
      });
      pw.post({ type: 'init', models: this.models, provider: this.opts.provider, threads: this.opts.threads, decode: this.opts.decode ?? 'row',
        quantum: this.opts.quantum ?? DEFAULT_QUANTUM });
    });
  }

  /** Starts a replacement worker; one that fails to start (a model file changed on disk, memory
   * short) is retried after 1, 2, 4, ... up to 30 s, until one starts or the pool closes. Until
   * then requests fail at once (NoWorkerError) instead of waiting for a worker that is not coming. */
  private replace(attempt: number): void {
    if (this.closing) return;
    this.retryTimer = null;
    this.replacing++;
    this.spawn().then(() => {
      this.replacing--;
      this.replaceFailure = null;
    }, (err: Error) => {
      this.replacing--;
      if (this.closing) return;
      this.replaceFailure = err;
      const retryInMs = Math.min(30_000, 1000 * 2 ** attempt);
      this.opts.logger?.error({ err, attempt: attempt + 1, retryInMs }, 'replacement worker failed to start');
      for (const wake of this.readyWaiters.splice(0)) wake();   // waiters see that none is loading, and leave
      this.retryTimer = setTimeout(() => this.replace(attempt + 1), retryInMs);
    });
  }

  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const wake of this.readyWaiters.splice(0)) wake();   // waiters for a worker see `closing` and leave
    await Promise.all(this.workers.map((w) => new Promise<void>((resolve) => {
      // one still loading its models is not terminated: it leaves after the graph it is loading
      // (worker.ts), and terminate() inside onnxruntime's native session creation aborts the whole
      // process (a CUDA graph can take longer than the grace to open). A load that hangs therefore
      // holds close() until it ends; the server's last-resort timer (server.ts) bounds a shutdown.
      const timer = w.served ? setTimeout(() => void w.worker.terminate(), graceMs) : undefined;
      w.worker.once('exit', () => { clearTimeout(timer); resolve(); });
      w.post({ type: 'close' });
    })));
    this.workers.length = 0;
  }
}
