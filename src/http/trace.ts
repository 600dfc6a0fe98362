// W3C Trace Context: a caller's `traceparent` header names its trace and the span that called us.
// The service makes no spans of its own; it puts the caller's ids on its log lines for that
// request, so logs can be found from a trace (OpenTelemetry's log fields are trace_id, span_id;
// the caller's span is our parent, hence parent_id).

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The trace and parent span of a valid `traceparent` (version 00, or a later one read as 00 asks);
 * undefined for a missing or invalid header (all-zero ids, version ff, wrong lengths, upper case). */
export function traceContext(header: string | string[] | undefined): { trace_id: string; parent_id: string } | undefined {
  if (typeof header !== 'string') return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { trace_id: traceId, parent_id: parentId };
}
