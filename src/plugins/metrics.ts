// Prometheus metrics of one app instance: its own Registry (never the global one, so two apps in
// one process do not collide), the HTTP request histogram, and a RuntimeObserver that the runtime
// feeds. Label values come from closed sets only: route templates, status classes, loaded models'
// names and stages, graph kinds, failure reasons.
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RUNTIME_FAILURE_REASONS, type RuntimeObserver } from '../runtime/types.js';
import { FAILURE_REASONS } from '../http/error-mapping.js';
import { CLIENT_ERROR_REASONS, connectionAnswers } from '../http/client-error.js';

const SECONDS_HTTP = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const SECONDS_QUEUE = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SECONDS_FIRST_SLICE = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SECONDS_BETWEEN_SLICES = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SECONDS_GRAPH = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export class Metrics {
  readonly registry = new Registry();
  /** set by the runtime plugin: gauges read the runtime's state at scrape time */
  statsSource?: () => { queued: number; running: number; lastBatch: number; workersReady: number };

  readonly httpDuration = new Histogram({
    name: 'spn_http_request_duration_seconds',
    help: 'HTTP request duration (to the end of the body, streams included; status_class aborted: the client hung up first)',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: SECONDS_HTTP,
    registers: [this.registry],
  });
  readonly queueTime = new Histogram({
    name: 'spn_queue_time_seconds',
    help: 'time a request waited for a place before it ran',
    labelNames: ['model', 'kind'] as const,
    buckets: SECONDS_QUEUE,
    registers: [this.registry],
  });
  readonly timeToFirstSlice = new Histogram({
    name: 'spn_time_to_first_slice_seconds',
    help: 'from arrival to the first generated slice of a sampling request',
    labelNames: ['model'] as const,
    buckets: SECONDS_FIRST_SLICE,
    registers: [this.registry],
  });
  readonly timeBetweenSlices = new Histogram({
    name: 'spn_time_between_slices_seconds',
    help: 'time between consecutive slices of one sample',
    labelNames: ['model'] as const,
    buckets: SECONDS_BETWEEN_SLICES,
    registers: [this.registry],
  });
  readonly graphRun = new Histogram({
    name: 'spn_onnx_run_seconds',
    help: 'duration of one ONNX Runtime session run',
    labelNames: ['model', 'stage', 'graph'] as const,
    buckets: SECONDS_GRAPH,
    registers: [this.registry],
  });
  readonly queueLength: Gauge = new Gauge({
    name: 'spn_queue_length',
    help: 'requests waiting for a place',
    registers: [this.registry],
    collect: (): void => this.readStat(this.queueLength, 'queued'),
  });
  readonly running: Gauge = new Gauge({
    name: 'spn_running_requests',
    help: 'requests running (sharing batched runs)',
    registers: [this.registry],
    collect: (): void => this.readStat(this.running, 'running'),
  });
  readonly batchSize: Gauge = new Gauge({
    name: 'spn_batch_size',
    help: 'batch size of the latest graph run',
    registers: [this.registry],
    collect: (): void => this.readStat(this.batchSize, 'lastBatch'),
  });
  readonly workersReady: Gauge = new Gauge({
    name: 'spn_workers_ready',
    help: 'inference worker threads ready to take requests (fewer than WORKERS while a crashed one is replaced)',
    registers: [this.registry],
    collect: (): void => this.readStat(this.workersReady, 'workersReady'),
  });
  readonly workerRestarts = new Counter({
    name: 'spn_worker_restarts_total',
    help: 'inference workers that exited unasked (crashed) and were replaced',
    registers: [this.registry],
  });
  readonly modelInfo = new Gauge({
    name: 'spn_model_info',
    help: 'one series per loaded model (value 1), with the execution provider it runs on: cpu where CUDA was asked for means it fell back',
    labelNames: ['model', 'provider'] as const,
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'spn_build_info',
    help: 'the running build (value 1): service version, Node.js and onnxruntime-node versions',
    labelNames: ['version', 'node', 'onnxruntime'] as const,
    registers: [this.registry],
  });
  readonly samples = new Counter({ name: 'spn_samples_generated_total', help: 'images generated', labelNames: ['model'] as const, registers: [this.registry] });
  readonly slices = new Counter({ name: 'spn_slices_generated_total', help: 'slices generated', labelNames: ['model'] as const, registers: [this.registry] });
  readonly pixels = new Counter({ name: 'spn_pixels_generated_total', help: 'pixels generated', labelNames: ['model'] as const, registers: [this.registry] });
  readonly imagesScored = new Counter({ name: 'spn_images_scored_total', help: 'images scored (/likelihood, /likelihood/batch, Open Inference Protocol infer)', labelNames: ['model'] as const, registers: [this.registry] });
  readonly requestFailures = new Counter({
    name: 'spn_request_failures_total',
    help: 'sampling and scoring requests that failed, by reason (counted once per request by the HTTP layer)',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  readonly streamResumes = new Counter({
    name: 'spn_stream_resumes_total',
    help: 'event streams resumed from Last-Event-ID (a client reconnecting after its connection dropped); each samples again what it skips',
    labelNames: ['method'] as const,
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'spn_client_errors_total',
    help: 'requests answered and closed at the connection level: too slow to send (408), headers too large (431), not HTTP (400)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly runtimeFailures = new Counter({
    name: 'spn_runtime_failures_total',
    help: 'failures the runtime reported, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Zero series for every closed-set value, so rates and alerts exist before the first failure.
    // spn_request_failures_total's come with each route that does model work (modelRoute).
    for (const reason of RUNTIME_FAILURE_REASONS) this.runtimeFailures.inc({ reason }, 0);
    for (const method of ['GET', 'POST']) this.streamResumes.inc({ method }, 0);
    for (const reason of CLIENT_ERROR_REASONS) this.clientErrors.inc({ reason }, 0);
  }

  /** A route that runs models (route config `modelWork`): zero failure series for every reason. */
  modelRoute(route: string): void {
    for (const reason of FAILURE_REASONS) this.requestFailures.inc({ route, reason }, 0);
  }

  readonly observer: RuntimeObserver = {
    graphRun: (model, stage, graph, seconds, batch) => {
      this.graphRun.observe({ model, stage, graph }, seconds);
      this.batchSize.set(batch);
    },
    queueChanged: (queued, running) => {
      this.queueLength.set(queued);
      this.running.set(running);
    },
    generated: (model, what, n) => {
      (what === 'samples' ? this.samples : what === 'slices' ? this.slices : this.pixels).inc({ model }, n);
    },
    scored: (model, n) => this.imagesScored.inc({ model }, n),
    failed: (reason) => this.runtimeFailures.inc({ reason }),
    workerExited: () => this.workerRestarts.inc(),
  };

  // At scrape time the runtime's own counts win over the last observer callback.
  private readStat(gauge: Gauge, key: 'queued' | 'running' | 'lastBatch' | 'workersReady'): void {
    const s = this.statsSource?.();
    if (s) gauge.set(s[key]);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export default fp(
  async (app) => {
    const metrics = new Metrics();
    app.decorate('metrics', metrics);
    app.addHook('onRoute', (route) => {
      if ((route.config as { modelWork?: boolean } | undefined)?.modelWork) metrics.modelRoute(route.url);
    });

    // A client that hangs up before its answer has ended gets no onResponse: its request is counted
    // when the connection closes, under status_class 'aborted' (hung-up streams were not counted);
    // one whose connection the server cut while receiving it, under the status it was answered.
    app.addHook('onRequest', async (request, reply) => {
      const res = reply.raw;
      res.once('close', () => {
        if (res.writableFinished) return;
        // cut by the connection-level handler (a receive timeout), which answered on the socket itself
        const answered = connectionAnswers.get(request.raw.socket);
        const statusClass = answered === undefined ? 'aborted' : `${Math.floor(answered / 100)}xx`;
        metrics.httpDuration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status_class: statusClass }, reply.elapsedTime / 1000);
      });
    });

    app.addHook('onResponse', async (request, reply) => {
      metrics.httpDuration.observe(
        {
          method: request.method,
          // the template ('/models/:name'), never the raw URL; unmatched URLs share one label
          route: request.routeOptions.url ?? 'unmatched',
          status_class: `${Math.floor(reply.statusCode / 100)}xx`,
        },
        reply.elapsedTime / 1000,
      );
    });
  },
  { name: 'metrics', fastify: '5.x' },
);
