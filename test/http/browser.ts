// Debian's Chromium for the browser tests, driven by playwright-core (no browser is ever downloaded).
import { existsSync } from 'node:fs';
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
