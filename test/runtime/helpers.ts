import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createRuntime, type RuntimeOptions, type SampleEvent } from '../../src/runtime/index.js';
import { TINY_MODELS_DIR } from './fixtures.js';

/** Whether onnxruntime-node can run on CUDA on this machine, judged from the machine, not from
 * what the code under test reports: an NVIDIA driver loaded, and onnxruntime-node's CUDA provider
 * library installed (npm skips it unless asked; see the README's Deployment). The provider tests
 * take their CPU-only branch, with every check, wherever this is false. */
export const CUDA_HERE = (() => {
  if (!existsSync('/proc/driver/nvidia/version')) return false;
  const bin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin');
  const libs = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? libs(join(dir, e.name)) : [e.name]));
  return existsSync(bin) && libs(bin).some((f) => f.startsWith('libonnxruntime_providers_cuda'));
})();

export const quietLogger = { info() {}, warn() {}, error() {} };

export function runtime(opts: Partial<RuntimeOptions> = {}) {
  return createRuntime({ modelsDir: TINY_MODELS_DIR, provider: 'cpu', workers: 1, threads: 1, maxQueue: 16, maxRunning: 16, logger: quietLogger, ...opts });
}

export async function collect(gen: AsyncGenerator<SampleEvent>): Promise<SampleEvent[]> {
  const out: SampleEvent[] = [];
  for await (const ev of gen) out.push(ev);
  return out;
}

export function doneOf(events: SampleEvent[]) {
  const d = events.at(-1);
  if (d?.type !== 'done') throw new Error('last event is not done');
  return d;
}
