// Ajv's type coercion turns the strings "Infinity", "-Infinity" and "1e999" into non-finite numbers
// and then skips minimum and maximum (ajv-validator/ajv#2212, open PRs #2626 and #2661): a query
// `temperature=Infinity` passed validation and sampled at an infinite temperature. Numbers that
// reach a handler are checked here, after validation, until Ajv refuses them itself.

/** The path (`querystring/temperature`) of the first non-finite number in a validated query or
 * JSON body, or undefined. Plain objects and arrays only, a few levels deep (the schemas' depth);
 * raw bodies (Buffers) are not walked. */
export function nonFinitePath(value: unknown, path: string, depth = 4): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (depth === 0 || value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return undefined;
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  for (const [k, v] of entries) {
    const found = nonFinitePath(v, `${path}/${k}`, depth - 1);
    if (found) return found;
  }
  return undefined;
}
