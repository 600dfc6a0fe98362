// The compiled server (dist/src/server.js) as a child process on a free loopback port, for the
// scripts that measure it from outside (bench:http, soak).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './graph-variants.js';

/** A TCP port free on the loopback interface now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Starts the server with the shipped models on the CPU provider (`env` adds to or overrides its
 * environment) and waits until /health/ready answers 200. */
export async function startServer(env: Record<string, string>): Promise<{ proc: ChildProcess; base: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'server.js')], {
    cwd: ROOT,
    env: {
      ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', MODELS_DIR: join(ROOT, 'models'),
      EXECUTION_PROVIDER: 'cpu', ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the server exited with ${proc.exitCode} before it was ready`);
    try {
      if ((await fetch(`${base}/health/ready`)).status === 200) return { proc, base };
    } catch { /* not listening yet */ }
    if (performance.now() - t0 > 120_000) throw new Error('the server was not ready within 120 s');
    await sleep(100);
  }
}
