// Request validation with Fastify's Ajv compiler, in two flavours. Ajv's type coercion (Fastify's
// default) is right for text — a query string, path parameters, headers and multipart fields
// arrive as strings — and wrong for a JSON body, which has types of its own: coerced, `{"seed":
// null}` was seed 0, `"7"` and `[7]` were 7, `{"count": true}` was 1, and a JSON `"perPixel":
// null` overrode `?perPixel=true`. JSON bodies are validated as they are (400 naming the field).
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

type BuildValidator = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator'];
type Route = { httpPart?: string; contentType?: string };

export function validatorFactory(): BuildValidator {
  const pool = AjvCompiler();
  return (externalSchemas, options) => {
    const coercing = pool(externalSchemas, options);
    const exact = pool(externalSchemas, { ...options, customOptions: { ...options?.customOptions, coerceTypes: false } } as typeof options);
    // a body schema without content types is a JSON body's (POST /sample)
    return (route: Route & Parameters<typeof coercing>[0]) =>
      (route.httpPart === 'body' && (route.contentType ?? 'application/json') === 'application/json' ? exact : coercing)(route);
  };
}
