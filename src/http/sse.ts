// A Server-Sent Events body: named events with one-line JSON data, and keep-alive comments
// whenever nothing was written for a while (so proxies and clients do not time out while queued).
//
// Events made in the same turn of the event loop go out in one write: a sample's last slice, its
// stage and the answer arrive together, and every write is a system call on the main thread
// (the largest item in a CPU profile of the server at 32 streams).
import { PassThrough } from 'node:stream';
import { once } from 'node:events';

/** How long an EventSource waits before reconnecting after a dropped connection (or after the
 * end, to learn from a 204 that there is no more): browsers' default is about 3 s. */
const RECONNECT_MS = 1000;

export class EventStream {
  readonly body = new PassThrough();
  private readonly keepAlive: NodeJS.Timeout;
  private pending: string[] = [];
  private flushing = false;

  constructor(keepAliveMs: number) {
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), keepAliveMs);
    // The comment makes the headers go out at once, so the client sees 200 while the request waits.
    this.write(`: open\nretry: ${RECONNECT_MS}\n\n`);
  }

  /** false once the client is gone or the stream was ended */
  get open(): boolean {
    return !this.body.destroyed && !this.body.writableEnded;
  }

  /** Queues one event; waits while the client reads slower than we write, but not past `signal`:
   * a client that stops reading must not hold its request (and its place) beyond its deadline. */
  async send(event: string, json: string, signal?: AbortSignal, id?: string): Promise<void> {
    this.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${json}\n\n`);
    if (this.body.writableNeedDrain && this.open && !signal?.aborted) {
      // the losers' listeners are removed by aborting `done` (their rejections reach only the race)
      const done = new AbortController();
      const opts = { signal: done.signal };
      const waits = [once(this.body, 'drain', opts), once(this.body, 'close', opts)];
      if (signal) waits.push(once(signal, 'abort', opts));
      await Promise.race(waits).finally(() => done.abort());
    }
  }

  end(): void {
    clearInterval(this.keepAlive);
    this.flush();
    if (this.open) this.body.end();
  }

  private write(chunk: string): void {
    if (!this.open) return;
    // Each write is itself activity: restart the keep-alive countdown.
    this.keepAlive.refresh();
    this.pending.push(chunk);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushing = false;
    if (!this.pending.length) return;
    const chunk = this.pending.join('');
    this.pending = [];
    if (this.open) this.body.write(chunk);
  }
}
