// Builds the model runtime for this app and exposes it as `app.runtime`. Loading (and warming up)
// runs in the background so the server can answer liveness probes and report "loading" on
// readiness meanwhile; routes that need the models answer 503 until they are in.
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { Runtime, RuntimeOptions } from '../runtime/types.js';
import { NotReadyError } from '../http/errors.js';

export type CreateRuntime = (options: RuntimeOptions) => Promise<Runtime>;

export interface RuntimeDeps {
  /** a runtime built by the caller (who then owns and closes it); null: no models (documentation only) */
  runtime?: Runtime | null;
  /** builds the runtime; default: createRuntime from src/runtime */
  createRuntime?: CreateRuntime;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the runtime; throws NotReadyError (503) while the models are loading or failed to load */
    readonly runtime: Runtime;
    /** resolves once the models are loaded and warmed up; rejects if loading failed */
    runtimeLoaded(): Promise<Runtime>;
    /** the model a request without `model` gets */
    defaultModel(): string;
  }
}

/** MODELS as a list of names; undefined (every model) when empty. */
export function modelList(value: string): string[] | undefined {
  const names = value.split(',').map((n) => n.trim()).filter(Boolean);
  return names.length ? [...new Set(names)] : undefined;
}

async function defaultCreateRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { createRuntime } = await import('../runtime/index.js');
  return createRuntime(options);
}

export default fp<{ config: Config } & RuntimeDeps>(
  async (app, { config, runtime: given, createRuntime = defaultCreateRuntime }) => {
    let runtime: Runtime | undefined = given ?? undefined;
    let defaultModel = config.DEFAULT_MODEL;

    const adopt = (rt: Runtime) => {
      runtime = rt;
      if (!rt.model(config.DEFAULT_MODEL)) {
        defaultModel = rt.defaultModel();
        app.log.warn({ configured: config.DEFAULT_MODEL, using: defaultModel }, 'DEFAULT_MODEL is not among the loaded models');
      }
      app.lifecycle.runtimeReady = () => rt.ready;
      app.lifecycle.workersReady = () => rt.stats().workersReady;
      app.metrics.statsSource = () => rt.stats();
      for (const m of rt.models()) app.metrics.modelInfo.set({ model: m.name, provider: m.provider }, 1);
      app.lifecycle.loaded();
      app.log.info({ models: rt.models().map((m) => ({ name: m.name, provider: m.provider, note: m.providerNote })) }, 'models loaded');
      return rt;
    };

    // closing the app while the models load stops the loading (a shutdown does not wait for it)
    const stopLoading = new AbortController();
    let loading: Promise<Runtime>;
    if (given) {
      loading = Promise.resolve(adopt(given));
    } else if (given === null) {
      app.lifecycle.failed('built without a runtime');
      loading = Promise.reject(new NotReadyError('built without a runtime'));
    } else {
      loading = createRuntime({
        modelsDir: config.MODELS_DIR,
        models: modelList(config.MODELS),
        provider: config.EXECUTION_PROVIDER,
        workers: config.WORKERS,
        threads: config.THREADS,
        maxQueue: config.MAX_QUEUE,
        maxRunning: config.MAX_RUNNING,
        decode: config.DECODE,
        quantum: config.QUANTUM,
        observer: app.metrics.observer,
        logger: app.log,
        signal: stopLoading.signal,
      }).then(adopt, (err: Error) => {
        if (stopLoading.signal.aborted) {
          app.log.info('model loading stopped: the server is closing');
          throw err;
        }
        app.lifecycle.failed(err.message);
        app.log.error({ err }, 'loading the models failed');
        throw err;
      });
    }
    loading.catch(() => {}); // observed through runtimeLoaded() and readiness

    app.decorate('runtime', {
      getter(): Runtime {
        if (runtime) return runtime;
        const state = app.lifecycle.state;
        throw new NotReadyError(state === 'failed' ? `the models failed to load: ${app.lifecycle.detail}` : 'the models are still loading');
      },
    });
    app.decorate('runtimeLoaded', () => loading);
    app.decorate('defaultModel', () => defaultModel);

    app.addHook('onClose', async () => {
      // A runtime still loading stops loading (its workers leave after the graph each is loading);
      // one that is in is closed, so its workers do not outlive the app.
      if (given !== undefined) return;
      if (!runtime) stopLoading.abort();
      const rt = await loading.catch(() => undefined);
      await rt?.close();
    });
  },
  { name: 'runtime', fastify: '5.x', dependencies: ['metrics', 'lifecycle'] },
);
