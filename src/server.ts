// Loads the configuration, builds the app, listens, and shuts down with grace on SIGTERM/SIGINT.
// The signal handlers come first, before the modules load (a few hundred ms): a SIGTERM then would
// otherwise kill the process unlogged. Until the app exists there is nothing to drain.
let stop: ((signal: string) => Promise<void>) | null = null;
const onSignal = (signal: string) => {
  if (stop) return void stop(signal);
  process.stderr.write(`spn-serve: ${signal} while starting, before listening; exiting\n`);
  process.exit(0);
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

const { loadConfig } = await import('./config.js');
const { buildApp } = await import('./app.js');

/** A start-up failure that is the operator's to fix (a bad variable; a setting the schema cannot
 * judge alone, such as an origin that does not parse; a host that does not resolve, a port in
 * use): one line naming it, not a stack trace, and exit 1. */
function cannotStart(what: string, err: unknown): never {
  process.stderr.write(`spn-serve: ${what}: ${(err as Error).message}\n`);
  process.exit(1);
}
const config = (() => {
  try {
    return loadConfig();
  } catch (err) {
    return cannotStart('invalid configuration', err);
  }
})();
const app = await buildApp(config).catch((err: unknown) => cannotStart('invalid configuration', err));

let stopping = false;
stop = async (signal: string): Promise<void> => {
  // A second signal (supervisors and people send one) does not cut the drain short: Node's default
  // action for it would kill the process and every request in flight.
  if (stopping) {
    app.log.warn({ signal }, 'already shutting down; running requests keep their grace period');
    return;
  }
  stopping = true;
  const delayMs = config.SHUTDOWN_DELAY_MS;
  app.log.info({ signal, inFlight: app.lifecycle.inFlight, delayMs, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down');
  // A last resort, should closing itself hang: exit anyway, and say it failed.
  setTimeout(() => {
    app.log.error('shutdown did not finish in time; exiting');
    process.exit(1);
  }, delayMs + config.SHUTDOWN_GRACE_MS + 15_000).unref();
  try {
    const { aborted } = await app.shutdown(config.SHUTDOWN_GRACE_MS, delayMs);
    app.log.info({ aborted }, 'shut down');
    process.exit(0);
  } catch (err) {
    app.log.error({ err }, 'shutdown failed');
    process.exit(1);
  }
};

await app.listen({ port: config.PORT, host: config.HOST }).catch((err: unknown) => cannotStart(`cannot listen on ${config.HOST}:${config.PORT}`, err));
// Model loading runs in the background (readiness says when it is done); a model that cannot be
// loaded stops the service, as it should never half-start.
app.runtimeLoaded().catch((err: Error) => {
  if (stopping) return;   // a shutdown stopped the loading: it exits by itself
  // the runtime plugin has logged the cause with its stack; with LOG_LEVEL=silent nothing would say it
  if (app.log.level === 'silent') process.stderr.write(`spn-serve: models failed to load: ${err.message}\n`);
  app.log.fatal({ cause: err.message }, 'models failed to load; exiting');
  process.exit(1);
});
