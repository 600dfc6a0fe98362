// HEAD /sample: the headers GET would answer, its refusals, and a seeded PNG's ETag and 304,
// without the model running (no graph run, no sample counted). Over a real socket too, where a
// HEAD answer must carry no body.
import t from 'tap';
import { listening, metricValue, readyApp } from './helpers.js';

t.test('HEAD /sample answers what GET would, without sampling', async (t) => {
  const app = await readyApp();
  t.teardown(() => app.close());
  const counted = async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    return { samples: metricValue(text, 'spn_samples_generated_total', { model: 'tiny-c1' }) ?? 0, runs: metricValue(text, 'spn_onnx_run_seconds_count') ?? 0 };
  };
  const before = await counted();

  const get = await app.inject({ method: 'GET', url: '/sample?seed=7&count=2&temperature=0.9', headers: { accept: 'image/png' } });
  t.equal(get.statusCode, 200);
  const afterGet = await counted();
  t.equal(afterGet.samples, before.samples + 2, 'GET samples (the counter this test watches moves)');

  const head = await app.inject({ method: 'HEAD', url: '/sample?seed=7&count=2&temperature=0.9', headers: { accept: 'image/png' } });
  t.equal(head.statusCode, 200);
  t.equal(head.headers['content-type'], 'image/png');
  t.equal(head.headers.etag, get.headers.etag, 'the same ETag as GET');
  t.equal(head.headers['cache-control'], 'no-cache');
  t.equal(head.headers.vary, 'Accept');
  t.equal(head.headers['x-seed'], '7');
  t.equal(head.body, '');

  const revalidated = await app.inject({ method: 'HEAD', url: '/sample?seed=7&count=2&temperature=0.9', headers: { accept: 'image/png', 'if-none-match': String(get.headers.etag) } });
  t.equal(revalidated.statusCode, 304, 'a client holding the PNG: 304');
  const other = await app.inject({ method: 'HEAD', url: '/sample?seed=8&count=2&temperature=0.9', headers: { accept: 'image/png', 'if-none-match': String(get.headers.etag) } });
  t.equal(other.statusCode, 200, 'another seed: another tag');
  t.not(other.headers.etag, get.headers.etag);

  const json = await app.inject({ method: 'HEAD', url: '/sample?seed=7' });
  t.equal(json.statusCode, 200);
  t.equal(json.headers['content-type'], 'application/json; charset=utf-8');
  t.equal(json.headers['cache-control'], 'no-store');
  t.equal(json.headers.etag, undefined);
  const stream = await app.inject({ method: 'HEAD', url: '/sample', headers: { accept: 'text/event-stream' } });
  t.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
  t.equal(stream.headers['cache-control'], 'no-cache, no-transform', 'as a GET stream has');

  // GET's refusals, by the same checks
  const bad = await app.inject({ method: 'HEAD', url: '/sample?count=99' });
  t.equal(bad.statusCode, 400);
  t.equal((await app.inject({ method: 'HEAD', url: '/sample?model=nope' })).statusCode, 404);
  t.equal((await app.inject({ method: 'HEAD', url: '/sample', headers: { accept: 'text/html' } })).statusCode, 406);
  const stage = await app.inject({ method: 'HEAD', url: '/sample?stopAfter=nowhere' });
  t.equal(stage.statusCode, 422, 'a stage the model lacks');
  t.equal(stage.statusCode, (await app.inject({ method: 'GET', url: '/sample?stopAfter=nowhere' })).statusCode, '... as GET answers');

  t.same(await counted(), afterGet, 'no HEAD ran a graph or counted a sample');
});

t.test('over a socket: the headers and no body', async (t) => {
  const { app, url } = await listening();
  t.teardown(() => app.close());
  const res = await fetch(`${url}/sample?seed=3`, { method: 'HEAD', headers: { accept: 'image/png' } });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'image/png');
  t.match(res.headers.get('etag'), /^"[0-9a-f]{32}"$/);
  t.equal((await res.arrayBuffer()).byteLength, 0);
  const get = await fetch(`${url}/sample?seed=3`, { headers: { accept: 'image/png', 'if-none-match': res.headers.get('etag')! } });
  t.equal(get.status, 304, 'the tag HEAD gave is the one GET honours');
});
