// The committed OpenAPI document is what the app generates, and it declares every route's answers.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { OPENAPI_PATH, openapiText } from '../../scripts/write-openapi.js';
import { join } from 'node:path';
import { CLIENT_ERROR_REASONS } from '../../src/http/client-error.js';
import { readyApp, ROOT } from './helpers.js';

t.test('openapi/openapi.json matches the app (run `npm run openapi` after changing a route)', async (t) => {
  const generated = await openapiText();
  const committed = await readFile(OPENAPI_PATH, 'utf8');
  t.equal(committed, generated);
});

t.test('every route documents its body, query and answers', async (t) => {
  const doc = JSON.parse(await openapiText());
  const ops = (p: string, m: string) => doc.paths[p][m];
  t.same(Object.keys(doc.paths).sort(), [
    '/health/live', '/health/ready', '/likelihood', '/likelihood/batch', '/metrics', '/models', '/models/{name}', '/sample',
    '/v2', '/v2/health/live', '/v2/health/ready', '/v2/models/{name}', '/v2/models/{name}/infer', '/v2/models/{name}/ready',
    '/v2/models/{name}/versions/{version}', '/v2/models/{name}/versions/{version}/infer', '/v2/models/{name}/versions/{version}/ready',
  ]);
  // the Open Inference Protocol's inference: JSON or binary bodies, path parameters as the path has them
  const infer = ops('/v2/models/{name}/infer', 'post');
  t.same(Object.keys(infer.requestBody.content).sort(), ['application/json', 'application/octet-stream']);
  t.match(infer.requestBody.content['application/json'].schema.properties.inputs.items.properties.datatype, { enum: ['UINT8'] });
  t.same(infer.parameters.map((p: { name: string }) => p.name), ['name']);
  t.same(ops('/v2/models/{name}/versions/{version}/infer', 'post').parameters.map((p: { name: string }) => p.name), ['name', 'version']);
  t.same(Object.keys(infer.responses).sort(), ['200', '400', '401', '404', '413', '422', '429', '500', '503', '504']);
  // answers given before routing belong to no route: the document's description names them
  for (const reason of [...CLIENT_ERROR_REASONS, 'forbidden_origin']) t.match(doc.info.description, `\`${reason}\``, `info names ${reason}`);
  t.match(doc.info.description, /408 `request_timeout`.*431 `headers_too_large`.*400 `malformed`/s);
  t.same(conditionKeys(doc), ['convert', 'image', 'mode', 'slices'], "/sample's condition takes convert");
  const sample = ops('/sample', 'post');
  t.same(Object.keys(sample.responses).sort(), ['200', '400', '401', '404', '406', '413', '415', '422', '429', '500', '503', '504']);
  t.same(Object.keys(sample.responses['200'].content).sort(), ['application/json', 'image/png', 'text/event-stream']);
  t.ok(sample.requestBody.content['application/json'].schema.properties.count);
  t.same(sample.requestBody.content['application/json'].schema.properties.timeoutMs.minimum, 1, 'the deadline is documented');
  const lik = ops('/likelihood', 'post');
  t.same(Object.keys(lik.requestBody.content).sort(), ['application/json', 'image/jpeg', 'image/png', 'image/webp', 'multipart/form-data']);
  t.same(lik.requestBody.content['image/png'].schema.type, 'string', 'binary bodies are typed for Swagger UI');
  t.same(lik.requestBody.content['multipart/form-data'].schema.properties.image, { format: 'binary', description: 'the image file (PNG, JPEG or WebP)', type: 'string' });
  t.same(lik.parameters.map((p: { name: string }) => p.name).sort(), ['grayscale', 'model', 'perPixel', 'resize', 'rgb', 'timeoutMs']);
  t.same(Object.keys(lik.responses).sort(), ['200', '400', '401', '404', '413', '415', '422', '429', '500', '503', '504']);
  const batch = ops('/likelihood/batch', 'post');
  t.same(Object.keys(batch.requestBody.content), ['application/json', 'multipart/form-data']);
  t.same(batch.requestBody.content['application/json'].schema.properties.images.maxItems, 64);
  t.same(batch.requestBody.content['multipart/form-data'].schema.properties.images, {
    type: 'array', minItems: 1, maxItems: 64, description: 'one file part named images per image, in order',
    items: { format: 'binary', description: 'the image file (PNG, JPEG or WebP)', type: 'string' },
  });
  t.same(Object.keys(batch.responses).sort(), ['200', '400', '401', '404', '411', '413', '415', '422', '429', '500', '503', '504']);
  t.same(Object.keys(ops('/health/ready', 'get').responses).sort(), ['200', '503']);
  // each error answer shows its own example (Swagger UI showed 'validation' for a 401 and a 503)
  const example = (code: string) => {
    const ref = sample.responses[code].content['application/json'].schema.$ref as string;
    return doc.components.schemas[ref.replace('#/components/schemas/', '')].properties.error_type.example;
  };
  t.same(['400', '401', '404', '429', '503', '504'].map(example), ['validation', 'unauthorized', 'unknown_model', 'overloaded', 'not_ready', 'timeout']);
  for (const name of ['ErrorBody', 'SampleResult', 'SliceEvent', 'StageEvent', 'LikelihoodResult', 'LikelihoodBatchResult', 'ModelSummary']) t.ok(doc.components.schemas[name], name);
});

function conditionKeys(doc: { paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: { properties: { condition: { properties: object } } } }> } }>> }): string[] {
  return Object.keys(doc.paths['/sample'].post.requestBody.content['application/json'].schema.properties.condition.properties).sort();
}

t.test('the examples Swagger UI starts from ("Try it out") are requests the server accepts', async (t) => {
  const doc = JSON.parse(await openapiText());
  const app = await readyApp({ MODELS_DIR: join(ROOT, 'models'), MODELS: 'mu-fmnist', DEFAULT_MODEL: 'mu-fmnist' });
  t.teardown(() => app.close());
  let tried = 0;
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, OpenApiOperation>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const example = op.requestBody?.content?.['application/json']?.example;
      if (example === undefined) continue;
      // path parameters as their examples give them (none are left without one)
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => {
        const p = op.parameters?.find((q) => q.in === 'path' && q.name === name);
        return String(p?.example ?? `{${name}}`);
      });
      if (url.includes('{')) continue;   // the versioned routes: the version is the model's own
      const res = await app.inject({ method: method.toUpperCase() as 'POST', url, payload: example as Record<string, unknown> });
      t.equal(res.statusCode, 200, `${method.toUpperCase()} ${url} with its example: ${res.statusCode} ${res.statusCode === 200 ? '' : res.body}`);
      tried++;
    }
  }
  t.equal(tried, 4, 'POST /sample, /likelihood, /likelihood/batch and /v2/models/{name}/infer');
  // and count and temperature, which have defaults, are not required
  const sample = doc.paths['/sample'];
  t.equal(sample.post.requestBody.content['application/json'].schema.required, undefined, 'POST /sample requires no field');
  t.same(sample.get.parameters.filter((p: { required?: boolean }) => p.required), [], 'GET /sample requires no parameter');
});

interface OpenApiOperation {
  requestBody?: { content?: Record<string, { example?: unknown }> };
  parameters?: { in: string; name: string; example?: unknown; required?: boolean }[];
}
