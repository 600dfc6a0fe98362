import { createRuntime, type RuntimeOptions, type SampleEvent } from '../../src/runtime/index.js';
import { TINY_MODELS_DIR } from './fixtures.js';

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
