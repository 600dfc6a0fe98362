// Debian's Chromium for the browser tests, driven by playwright-core (no browser is ever downloaded).
import { existsSync } from 'node:fs';
import net from 'node:net';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** how long a page may take to show what a test waits for */
export const WAIT = { timeout: 15_000 };

/** A headless Chromium closed at the test's end; null (and the test failed) when it is missing:
 * a missing browser is a broken environment, not a reason to skip (CI installs it, .ci/run). */
export async function launchChromium(t: { fail(message: string): void; teardown(fn: () => unknown): void }): Promise<Browser | null> {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium) to run the browser tests`);
    return null;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 15_000,
  });
  t.teardown(() => browser.close());
  return browser;
}

/**
 * A proxy in front of `target` that cuts the first request matching `request` (its first line, e.g.
 * /^POST \/sample /) after the `keep`-th event of its event stream, as a dropped network connection
 * would: it passes the stream's bytes up to the end of that event, holds the rest, waits until
 * `dispatched()` (the page's count of events handled) reaches `keep`, so the cut does not depend on
 * how the bytes were split into packets, then closes both sides. Everything else passes as it is.
 */
export async function cuttingProxy(
  t: { teardown(fn: () => unknown): void },
  target: string,
  opts: { request: RegExp; keep: number; dispatched: () => number | Promise<number> },
): Promise<{ url: string; cut: () => boolean }> {
  const upstream = new URL(target);
  let cut = false;
  let matched = false;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(upstream.port), upstream.hostname);
    sockets.add(client).add(server);
    let isStream = false;
    let text = '';       // the stream's bytes so far (latin1), while it is still being passed
    let passed = 0;      // how many of them went to the browser
    let holding = false;
    client.on('data', (chunk) => {
      if (!matched && opts.request.test(chunk.toString('latin1'))) matched = isStream = true;
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (!isStream || cut) {
        client.write(chunk);
        return;
      }
      if (holding) return;
      text += chunk.toString('latin1');
      // the end of the keep-th event: the blank line after its id
      let at = -1;
      for (let k = 0, from = 0; k < opts.keep; k++) {
        at = text.indexOf('\nid: ', from);
        if (at < 0) break;
        from = at + 1;
      }
      const end = at < 0 ? -1 : text.indexOf('\n\n', at + 1);
      if (end < 0) {
        client.write(Buffer.from(text.slice(passed), 'latin1'));
        passed = text.length;
        return;
      }
      client.write(Buffer.from(text.slice(passed, end + 2), 'latin1'));
      holding = true;
      const started = Date.now();
      const poll = async () => {
        if ((await opts.dispatched()) < opts.keep && Date.now() - started < 10_000) {
          setTimeout(() => void poll(), 10);
          return;
        }
        cut = true;
        client.destroy();
        server.destroy();
      };
      void poll();
    });
    const close = () => { client.destroy(); server.destroy(); };
    client.on('error', close);
    server.on('error', close);
    client.on('close', close);
    server.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    proxy.close(() => resolve());
    for (const socket of sockets) socket.destroy();   // the browser keeps its connections alive
  }));
  return { url: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, cut: () => cut };
}
