// Readiness and graceful shutdown. Tracks every request that is doing model work, so that on
// shutdown the service can stop taking work, let that work finish within a grace period, and then
// abort what is left (streams end with an in-band error event).
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import { ShutdownAbort, ShuttingDownError } from '../http/errors.js';
import { lingering } from '../http/linger.js';

export type ReadyState = 'ready' | 'loading' | 'recovering' | 'failed' | 'shutting_down';

export class Lifecycle {
  private loadState: 'loading' | 'loaded' | 'failed' = 'loading';
  private loadDetail?: string;
  private shuttingDown = false;
  private readonly work = new Set<AbortController>();
  private idleWaiters: Array<() => void> = [];
  /** set by the runtime plugin */
  runtimeReady: () => boolean = () => true;
  /** set by the runtime plugin: inference workers ready to take requests */
  workersReady: () => number = () => 1;

  get state(): ReadyState {
    if (this.shuttingDown) return 'shutting_down';
    if (this.loadState === 'failed') return 'failed';
    if (this.loadState === 'loading' || !this.runtimeReady()) return 'loading';
    // every worker crashed and is being replaced: requests would wait (up to 30 s), so route elsewhere
    if (this.workersReady() === 0) return 'recovering';
    return 'ready';
  }

  get detail(): string | undefined {
    return this.loadDetail;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  get inFlight(): number {
    return this.work.size;
  }

  loaded(): void {
    this.loadState = 'loaded';
  }

  failed(detail: string): void {
    this.loadState = 'failed';
    this.loadDetail = detail;
  }

  /** Registers a request's work; call the returned function when it has ended, however it ended. */
  track(ac: AbortController): () => void {
    if (this.shuttingDown) throw new ShuttingDownError();
    this.work.add(ac);
    return () => {
      this.work.delete(ac);
      if (this.work.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  /**
   * Waits up to graceMs for tracked work to end by itself, then aborts the rest and waits
   * (up to abortWaitMs) for it to wind down. Answers how many requests were aborted.
   */
  async drain(graceMs: number, abortWaitMs = 5_000): Promise<{ aborted: number }> {
    this.beginShutdown();
    if (!(await this.idleWithin(graceMs))) {
      const left = [...this.work];
      for (const ac of left) ac.abort(new ShutdownAbort());
      await this.idleWithin(abortWaitMs);
      return { aborted: left.length };
    }
    return { aborted: 0 };
  }

  private idleWithin(ms: number): Promise<boolean> {
    if (this.work.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(wake);
    });
  }
}

/**
 * The server's open connections, and which of them have an answer in progress. Node's
 * closeIdleConnections() closes kept-alive connections between requests, but not one that is
 * connected and has not sent (all of) a request: a browser's preconnect, a load balancer's TCP
 * probe, a stalled client. server.close() waits for those until Node's headersTimeout (60 s), which
 * held shutdown past its last-resort timer (exit 1 after SHUTDOWN_GRACE_MS + 15 s).
 */
export class Connections {
  private readonly open = new Set<Socket>();
  /** the requests of each connection whose answer is in progress (none: not in the map) */
  private readonly answering = new Map<Socket, Set<IncomingMessage>>();

  constructor(server: Server) {
    server.on('connection', (s: Socket) => {
      this.open.add(s);
      s.once('close', () => {
        this.open.delete(s);
        this.answering.delete(s);
      });
    });
    server.on('request', (req: IncomingMessage, res) => {
      const s = req.socket;
      const mine = this.answering.get(s) ?? new Set<IncomingMessage>();
      this.answering.set(s, mine.add(req));
      res.once('close', () => {
        mine.delete(req);
        if (!mine.size && this.answering.get(s) === mine) this.answering.delete(s);
      });
    });
  }

  /** Closes every connection with no answer in progress; with `stalled`, also those whose every
   * request in progress is still being received (a client stalled mid-upload: after the drain no
   * answer can come, and Node stops enforcing the receive timeout once the server closes, so it
   * held shutdown until the last-resort timer, exit 1). */
  closeQuiet(stalled = false): void {
    for (const s of this.open) {
      const requests = this.answering.get(s);
      // (a connection lingering after a refusal (http/linger.ts) holds only requests dropped unanswered)
      if (!requests || lingering.has(s) || (stalled && [...requests].every((r) => !r.complete))) s.destroy();
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
    /** Turn not-ready (refusing new model work), keep accepting for delayMs, stop accepting,
     * drain work for up to graceMs, then close the app. */
    shutdown(graceMs: number, delayMs?: number): Promise<{ aborted: number }>;
  }
}

export default fp(
  async (app) => {
    const lifecycle = new Lifecycle();
    app.decorate('lifecycle', lifecycle);
    const connections = new Connections(app.server);

    // Requests that reach us on kept-alive connections while draining: refuse new model work,
    // keep answering probes and scrapes, and ask the client to reconnect elsewhere.
    app.addHook('onRequest', async (request, reply) => {
      if (!lifecycle.isShuttingDown) return;
      reply.header('connection', 'close');
      if (request.routeOptions.config?.modelWork) throw new ShuttingDownError();
    });

    // app.close() (and so the shutdown below, which ends in it) must not wait for connections that
    // have no answer in progress: kept-alive ones become idle only once their last answer is flushed
    // (after the drain, and after server.close() closed the idle ones of that moment), and one with
    // no request yet (a browser's preconnect) held a direct close for Node's headersTimeout. They
    // are closed, idle or with no request or half a request, until the server has closed.
    let closing: NodeJS.Timeout | undefined;
    app.addHook('preClose', async () => {
      connections.closeQuiet(true);
      closing = setInterval(() => connections.closeQuiet(true), 50);
    });
    app.addHook('onClose', async () => clearInterval(closing));

    app.decorate('shutdown', async (graceMs: number, delayMs = 0) => {
      lifecycle.beginShutdown();
      // SHUTDOWN_DELAY_MS: still listening, readiness 503 and new model work 503, so that load
      // balancers see it and stop routing here before the port closes
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      // Stop accepting connections now; Fastify's close() below would only do it after the drain.
      if (app.server.listening) app.server.close();
      const result = await lifecycle.drain(graceMs);
      await app.close();   // (its preClose hook closes the quiet connections)
      return result;
    });
  },
  { name: 'lifecycle', fastify: '5.x' },
);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the route runs the model: refused while shutting down, failures counted by reason */
    modelWork?: boolean;
  }
}
