// A Server-Sent Events body: named events with one-line JSON data, and keep-alive comments
// whenever nothing was written for a while (so proxies and clients do not time out while queued).
import { PassThrough } from 'node:stream';
import { once } from 'node:events';

export class EventStream {
  readonly body = new PassThrough();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(keepAliveMs: number) {
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), keepAliveMs);
    // The comment makes the headers go out at once, so the client sees 200 while the request waits.
    this.write(': open\n\n');
  }

  /** false once the client is gone or the stream was ended */
  get open(): boolean {
    return !this.body.destroyed && !this.body.writableEnded;
  }

  /** Writes one event; waits while the client reads slower than we write. */
  async send(event: string, json: string): Promise<void> {
    if (!this.write(`event: ${event}\ndata: ${json}\n\n`) && this.open) {
      await Promise.race([once(this.body, 'drain'), once(this.body, 'close')]);
    }
  }

  end(): void {
    clearInterval(this.keepAlive);
    if (this.open) this.body.end();
  }

  private write(chunk: string): boolean {
    if (!this.open) return false;
    // Each write is itself activity: restart the keep-alive countdown.
    this.keepAlive.refresh();
    return this.body.write(chunk);
  }
}
