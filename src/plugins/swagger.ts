// The OpenAPI document, generated from the routes' TypeBox schemas, and Swagger UI at /docs.
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ERROR_SCHEMAS, ErrorBody } from '../schemas/common.js';
import { ModelSummary } from '../schemas/models.js';
import { SampleResult, SliceEventData, StageEventData } from '../schemas/sample.js';
import { LikelihoodBatchResult, LikelihoodResult } from '../schemas/likelihood.js';

type Json = { [k: string]: unknown };

/**
 * Binary bodies are declared `{format: 'binary'}` without a type so that validation lets a Buffer
 * through (ajv applies `format` to strings only); the document gets the `type: string` that
 * OpenAPI and Swagger UI expect for a file.
 */
function typeBinary(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  const o = node as Json;
  if (o.format === 'binary' && o.type === undefined) o.type = 'string';
  for (const v of Object.values(o)) typeBinary(v);
}

export default fp(
  async (app, { version }: { version: string }) => {
    // Shared schemas: referenced by $id from routes, listed under components.schemas.
    for (const s of [ErrorBody, ...Object.values(ERROR_SCHEMAS), ModelSummary, SampleResult, SliceEventData, StageEventData, LikelihoodResult, LikelihoodBatchResult]) app.addSchema(s);

    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'spn-serve',
          version,
          description:
            'Sampling and scoring with Subscale Pixel Networks and Multidimensional Upscaling (Menick & Kalchbrenner 2018). Errors are `{error, error_type}`.\n\n' +
            'Any route may also be answered, before it is routed, with 408 `request_timeout` (the whole request, headers and body, took longer than the ' +
            "server's RECEIVE_TIMEOUT_MS), 431 `headers_too_large` or 400 `malformed` (not HTTP); the connection is then closed. " +
            'With CORS_ORIGINS set, a preflight (OPTIONS) from an origin not listed gets 403 `forbidden_origin`. ' +
            'A path no route has is 404 `not_found`; a path a route has, asked with a method it does not take, is 405 `method_not_allowed` with `Allow`.',
        },
        components: {
          securitySchemes: {
            apiKey: { type: 'http', scheme: 'bearer', description: 'one of the server\'s API_KEYS; needed only when the server sets them' },
          },
        },
        tags: [
          { name: 'generation', description: 'sample images, streamed slice by slice' },
          { name: 'scoring', description: 'likelihood of an image under a model' },
          { name: 'models', description: 'the loaded models' },
          { name: 'operations', description: 'health and metrics' },
        ],
      },
      // Keep the $id names (ErrorBody, ...) instead of def-0, def-1 in the document.
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
      transformObject: (doc) => {
        const spec = 'openapiObject' in doc ? doc.openapiObject : doc.swaggerObject;
        typeBinary(spec);
        return spec as never;
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  },
  { name: 'swagger', fastify: '5.x' },
);
