// Prometheus scraping, with Prometheus itself: Debian's `prometheus` scrapes a real listening server
// (API keys on: /metrics needs none) every second, and its query API must then hold the requests
// the test made, under their routes, status classes and failure reasons, with each metric's type
// and help. Its `promtool check metrics` lints the exposition: nothing of ours may be flagged (it
// flags three of prom-client's default Node.js gauges for their _total suffix, which are not ours
// to rename). Needs `apt-get install prometheus` (.ci/run installs it).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../../scripts/server-process.js';
import { listening, sleep } from './helpers.js';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const KEY = 'prometheus-test-key-0001';

/** Polls `get` until it answers something, for up to `ms`. */
async function until<T>(what: string, ms: number, get: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await get();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`${what}: not within ${ms} ms${last ? ` (${(last as Error).message})` : ''}`);
}

t.test('Prometheus scrapes the service and its queries hold what happened', async (t) => {
  if (!existsSync(PROMETHEUS) || !existsSync(PROMTOOL)) {
    t.fail(`${PROMETHEUS} or ${PROMTOOL} is missing: install Debian's Prometheus (apt-get install -y prometheus) to run this test`);
    return;
  }
  const { app, url } = await listening({ API_KEYS: KEY, DECODE: 'pixel' });
  t.teardown(() => app.close());
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };

  // two samples, one refused for its input, one without a key
  for (const seed of [1, 2]) {
    const r = await fetch(`${url}/sample`, { method: 'POST', headers, body: JSON.stringify({ count: 1, seed }) });
    t.equal(r.status, 200, `sample ${seed}`);
    await r.arrayBuffer();
  }
  const bad = await fetch(`${url}/sample`, { method: 'POST', headers, body: JSON.stringify({ count: 1, temperature: -1 }) });
  t.equal(bad.status, 400, 'a negative temperature: 400');
  const noKey = await fetch(`${url}/sample`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.equal(noKey.status, 401, 'no key: 401');

  // the exposition, linted by Prometheus' own tool
  const exposition = await (await fetch(`${url}/metrics`)).text();
  const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  const problems = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim());
  t.notOk(problems.some((l) => /error|pars/i.test(l) && !/^nodejs_/.test(l)), `promtool parses it (${problems.length} lint lines)`);
  t.same(problems.filter((l) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l)), [],
    'no lint of any metric of ours');

  // Prometheus, scraping every second
  const dir = mkdtempSync(join(tmpdir(), 'spn-prometheus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const target = new URL(url).host;
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: spn-serve',
    `    static_configs: [{ targets: ['${target}'] }]`,
    '',
  ].join('\n'));
  const port = await freePort();
  const prom = spawn(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promLog = '';
  prom.stderr.on('data', (d: Buffer) => { promLog += d.toString(); });
  t.teardown(() => void prom.kill('SIGKILL'));
  const api = `http://127.0.0.1:${port}/api/v1`;
  const get = async (path: string) => {
    const r = await fetch(`${api}${path}`);
    const body = await r.json() as { status: string; data: unknown };
    if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`);
    return body.data;
  };

  try {
    type Target = { health: string; lastError: string; scrapeUrl: string; labels: Record<string, string> };
    const scraped = await until('a successful scrape', 30_000, async () => {
      const { activeTargets } = await get('/targets') as { activeTargets: Target[] };
      return activeTargets.find((a) => a.health === 'up');
    });
    t.equal(scraped.scrapeUrl, `${url}/metrics`, 'the service\'s /metrics, no key');
    t.equal(scraped.lastError, '', 'scraped without an error');

    const query = async (q: string) => {
      const { result } = await get(`/query?query=${encodeURIComponent(q)}`) as { result: { metric: Record<string, string>; value: [number, string] }[] };
      return result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
    };
    const one = async (q: string) => {
      const r = await query(q);
      return r.length === 1 ? r[0].value : undefined;
    };
    t.equal(await one('up{job="spn-serve"}'), 1, 'up');
    t.equal(await one('spn_http_request_duration_seconds_count{route="/sample",method="POST",status_class="2xx"}'), 2, 'two samples, 2xx');
    t.equal(await one('sum(spn_http_request_duration_seconds_count{route="/sample",method="POST",status_class="4xx"})'), 2, 'the 400 and the 401');
    t.equal(await one('spn_request_failures_total{route="/sample",reason="bad_input"}'), 1, 'the negative temperature, a bad input');
    t.equal(await one('spn_request_failures_total{route="/sample",reason="unauthorized"}'), 1, 'the missing key');
    t.equal(await one('spn_request_failures_total{route="/sample",reason="overloaded"}'), 0, 'zero series before the first failure');
    const le = await query('spn_http_request_duration_seconds_bucket{route="/sample",status_class="2xx",le="+Inf"}');
    t.same(le.map((r) => r.value), [2], 'histogram buckets, +Inf holding both');
    t.equal(await one('sum(spn_samples_generated_total)'), 2, 'two images generated');
    t.equal(await one('spn_client_errors_total{reason="malformed"}'), 0, 'a zero series of the connection-level refusals');

    type Meta = Record<string, { type: string; help: string }[]>;
    const meta = await until('metric metadata', 10_000, async () => {
      const m = await get('/metadata') as Meta;
      return m.spn_request_failures_total ? m : undefined;
    });
    // every metric of ours reached Prometheus with the type and help the exposition gives it
    const declared = [...exposition.matchAll(/^# TYPE (spn_\w+) (\w+)$/gm)].map((m) => [m[1], m[2]]).sort();
    const helps = new Map([...exposition.matchAll(/^# HELP (spn_\w+) (.*)$/gm)].map((m) => [m[1], m[2]]));
    t.ok(declared.length >= 20, `${declared.length} metrics of ours in the exposition`);
    t.same(Object.keys(meta).filter((n) => n.startsWith('spn_')).sort().map((n) => [n, meta[n][0].type]), declared, 'each with its type in Prometheus');
    t.notOk(declared.some(([n]) => meta[n][0].help !== helps.get(n)), 'and its help');
    t.equal(meta.spn_request_failures_total[0].type, 'counter');
    t.equal(meta.spn_http_request_duration_seconds[0].type, 'histogram');
  } catch (err) {
    t.fail(`${(err as Error).message}\nprometheus said: ${promLog.slice(-2000)}`);
  }
});
