// The abort of a /sample or /likelihood request (requestAbort, below), and its deadline:
// REQUEST_TIMEOUT_MS for every such request, or a shorter
// `timeoutMs` the request asks for. The deadline starts once the body is read and its images
// decoded, and covers the queue and the model's runs. When it passes, the request's
// AbortController is aborted with a DeadlineAbort, so the runtime drops the request before its
// next run (or from the queue), and the answer is 504 (an in-band error event once a stream has
// begun).

import type { FastifyReply } from 'fastify';
import { ClientGoneAbort } from './errors.js';

/** The abort reason when a request's deadline passes. */
export class DeadlineAbort extends Error {
  constructor(readonly ms: number) {
    super(`request timed out after ${ms} ms`);
    // the name AbortSignal.timeout() gives its reason: the runtime counts such aborts as timeouts
    this.name = 'TimeoutError';
  }
}

/** The deadline in ms that applies: the shorter of the server's (0: none) and the request's; 0 for none. */
export function effectiveTimeout(serverMs: number, requestedMs: number | undefined): number {
  if (requestedMs === undefined) return serverMs;
  return serverMs > 0 ? Math.min(serverMs, requestedMs) : requestedMs;
}

/** Aborts `ac` with a DeadlineAbort after `ms` (none for 0); answers the function that disarms it. */
export function armDeadline(ac: AbortController, ms: number): () => void {
  if (ms <= 0) return () => {};
  const timer = setTimeout(() => ac.abort(new DeadlineAbort(ms)), ms);
  timer.unref(); // the request in flight keeps the process up, not its deadline
  return () => clearTimeout(timer);
}

/**
 * The AbortController of one /sample or /likelihood request: aborted when the client hangs up
 * (ClientGoneAbort), when the deadline passes (DeadlineAbort), or by the lifecycle at shutdown.
 * Call `finish` once the request's work has ended, however it ended.
 */
export function requestAbort(
  lifecycle: { track(ac: AbortController): () => void }, reply: FastifyReply, timeoutMs: number,
): { ac: AbortController; finish: () => void } {
  const ac = new AbortController();
  const untrack = lifecycle.track(ac);
  const disarm = armDeadline(ac, timeoutMs);
  // 'close' before the answer is finished: the client hung up
  const onClose = () => {
    if (!reply.raw.writableFinished) ac.abort(new ClientGoneAbort());
  };
  reply.raw.on('close', onClose);
  // a client that left while the request was still being read or its images decoded (the awaits
  // before this is called) has closed already: no 'close' is coming, and the request would run
  // its whole generation for nobody, uncounted as a hang-up
  if (reply.raw.destroyed) onClose();
  return {
    ac,
    finish: () => {
      reply.raw.off('close', onClose);
      disarm();
      untrack();
    },
  };
}
