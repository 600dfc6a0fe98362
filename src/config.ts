// The service's whole configuration: one validated schema of environment variables.
// This is the only module that reads process.env; everything else receives a Config.
import envSchema from 'env-schema';
import { availableParallelism } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_QUANTUM } from './runtime/types.js';

const MiB = 1024 * 1024;
/** The longest duration a setting may name: a day. (Node's timers turn anything over 2^31 - 1 ms
 * into 1 ms: a deadline of 2^31 ms answered 504 at once, a keep-alive wrote every millisecond.) */
const DAY_MS = 86_400_000;
/** One single-threaded worker per core: a request's steps are sequential and too small to split
 * across threads, so cores serve concurrent requests instead (docs/bench.md measures both). */
export const DEFAULT_WORKERS = Math.max(1, Math.min(availableParallelism(), 8));

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'TCP port to listen on (0: any free port)' }),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'address to bind' }),
  MODELS_DIR: Type.String({ default: 'models', minLength: 1, pattern: '\\S', description: 'folder holding one sub-folder per exported model' }),
  MODELS: Type.String({
    default: '',
    pattern: '^[A-Za-z0-9._, -]*$',
    description: 'comma-separated names of the models to load (default, empty: every model under MODELS_DIR); a name not there stops start-up',
  }),
  DEFAULT_MODEL: Type.String({ default: 'mu-fmnist', description: 'model used when a request names none' }),
  EXECUTION_PROVIDER: Type.Union([Type.Literal('auto'), Type.Literal('cuda'), Type.Literal('cpu')], {
    default: 'auto',
    description: 'ONNX Runtime execution provider; auto tries CUDA and falls back to CPU, and says so',
  }),
  DECODE: Type.Union([Type.Literal('row'), Type.Literal('pixel')], {
    default: 'row',
    description: 'how the slice decoder samples: row runs one graph per row (its pixel steps unrolled), pixel one graph per pixel',
  }),
  QUANTUM: Type.Integer({
    minimum: 1,
    maximum: 100000,
    default: DEFAULT_QUANTUM,
    description: 'scheduler: decoder steps (rows, or pixels in pixel mode) one stage of concurrent samples keeps the turn before the next gets it; 1 runs every stage every step',
  }),
  WORKERS: Type.Integer({ minimum: 1, maximum: 64, default: DEFAULT_WORKERS, description: 'inference worker threads (default: one per core, at most 8)' }),
  THREADS: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'intra-op threads per worker session' }),
  MAX_RUNNING: Type.Integer({ minimum: 1, maximum: 100_000, default: 32, description: 'requests that run at once, sharing batched runs' }),
  MAX_QUEUE: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 64, description: 'requests waiting beyond those running; more are answered 429' }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 1024 * MiB, default: 4 * MiB, description: 'largest request body, bytes (413 above)' }),
  MAX_IMAGE_PIXELS: Type.Integer({
    minimum: 1,
    maximum: 2 ** 30,
    default: 4096 * 4096,
    description: 'largest declared width*height of an uploaded image; larger is refused before decoding (decompression bombs)',
  }),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 0,
    maximum: DAY_MS,
    default: 60_000,
    description: 'longest a /sample, /likelihood, /likelihood/batch or v2 infer request may take, queue included (504 past it; 0: no limit); all but infer may ask for less with timeoutMs',
  }),
  RECEIVE_TIMEOUT_MS: Type.Integer({
    minimum: 0,
    maximum: DAY_MS,
    default: 30_000,
    description: 'longest a client may take to send a whole request, headers and body (408 and the connection closed past it; 0: no limit beyond 60 s for the headers); guards against clients that trickle or stall their uploads',
  }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, maximum: DAY_MS, default: 10_000, description: 'time running requests get to finish after SIGTERM before they are aborted' }),
  SHUTDOWN_DELAY_MS: Type.Integer({
    minimum: 0,
    maximum: DAY_MS,
    default: 0,
    description: 'time after SIGTERM during which the port stays open, readiness answers 503 and new model work 503 shutdown, so that load balancers stop routing here before it closes; the grace period follows it',
  }),
  SSE_KEEPALIVE_MS: Type.Integer({ minimum: 100, maximum: DAY_MS, default: 5_000, description: 'interval of keep-alive comments on an idle event stream' }),
  API_KEYS: Type.String({
    default: '',
    pattern: '^\\s*([A-Za-z0-9._~+/=-]{16,256}(\\s*,\\s*[A-Za-z0-9._~+/=-]{16,256})*)?\\s*$',
    description: 'comma-separated API keys (16-256 characters of A-Z a-z 0-9 . _ ~ + / = -); when set, sampling, scoring and the model listing need Authorization: Bearer <key> (401 without); health, metrics and the docs stay open. Empty (default): no keys',
  }),
  CORS_ORIGINS: Type.String({
    default: '',
    pattern: '^\\s*(\\*|[Hh][Tt][Tt][Pp][Ss]?://[^\\s,/]+(\\s*,\\s*[Hh][Tt][Tt][Pp][Ss]?://[^\\s,/]+)*)?\\s*$',
    description: 'web origins whose pages may call the API from a browser (CORS): a comma-separated list such as https://app.example,http://localhost:3000, or * for any; empty (default): none but the server\'s own',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' },
  ),
});

export type Config = Static<typeof ConfigSchema>;

/** Validates and completes the environment (or a plain object, in tests); throws naming the bad variable. */
export function loadConfig(env: Record<string, string | number | undefined> = process.env): Config {
  // Ajv reads a number with Number(), which takes '0x2' as 2, '0b1' as 1 and a blank ' ' as 0 (PORT
  // 0 is any free port; a timeout of 0 none): such a value is passed on as one that is not a number
  // at all, so it is refused with the rest ('WORKERS must be integer')
  const data: Record<string, string | number | undefined> = { ...env };
  // Ajv coerces 'Infinity' and '1e999' to numbers and then skips their bounds (ajv#2212)
  const infinite = new Map<string, string>();
  for (const [k, schema] of Object.entries(ConfigSchema.properties)) {
    const v = env[k];
    if ((schema as { type?: string }).type !== 'integer' || v === '' || v === undefined) continue;
    if (typeof v === 'string' && !/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?Infinity\s*$/.test(v)) data[k] = `not a decimal number: ${v}`;
    else if (!Number.isFinite(Number(v))) infinite.set(k, `${k} must be a finite number`);
  }
  let config: Config;
  try {
    config = envSchema<Config>({ schema: ConfigSchema, data, env: false, dotenv: false });
  } catch (err) {
    // every bad variable at once, the infinite ones too, so that one restart shows them all
    const named = configErrors(err);
    for (const [k, clause] of infinite) if (!named.some(([name]) => name === k)) named.push([k, clause.slice(k.length + 1)]);
    throw new Error(named.length ? named.map(([name, clause]) => `${name} ${clause}`).join('; ') : (err as Error).message);
  }
  if (infinite.size) throw new Error([...infinite.values()].join('; '));
  return config;
}

/** What a variable checked by a pattern must be, in words (Ajv would quote the pattern). */
const PATTERN_WORDS: Record<string, string> = {
  MODELS: 'comma-separated model names (letters, digits, . _ -)',
  MODELS_DIR: 'a folder, not blank',
  API_KEYS: 'comma-separated keys of 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -',
  CORS_ORIGINS: '* or comma-separated origins such as https://app.example (scheme and host, an optional port, no path)',
};

/** Ajv's errors for the environment, one clause per variable: a choice of words lists the words
 * (Ajv says "must be equal to constant" once per word, then "must match a schema in anyOf"). */
function configErrors(err: unknown): [string, string][] {
  const errors = (err as { errors?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }> }).errors;
  if (!Array.isArray(errors) || !errors.length) return [];
  const byVar = new Map<string, string>();
  for (const e of errors) {
    const name = e.instancePath.replace(/^\//, '') || String(e.params.missingProperty ?? '');
    const schema = (ConfigSchema.properties as Record<string, { anyOf?: Array<{ const?: unknown }> }>)[name];
    const words = schema?.anyOf?.map((a) => a.const).filter((c) => c !== undefined);
    const clause = words?.length ? `must be one of ${words.join(', ')}`
      : e.keyword === 'pattern' && PATTERN_WORDS[name] ? `must be ${PATTERN_WORDS[name]}`
      : e.keyword === 'minLength' && e.params.limit === 1 ? 'must not be empty' : e.message ?? e.keyword;
    if (!byVar.has(name)) byVar.set(name, clause);
  }
  return [...byVar];
}
