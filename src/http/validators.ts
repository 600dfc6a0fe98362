// Request validation with Fastify's Ajv compiler, in two flavours. Ajv's type coercion (Fastify's
// default) is right for text — a query string, path parameters, headers and multipart fields
// arrive as strings — and wrong for a JSON body, which has types of its own: coerced, `{"seed":
// null}` was seed 0, `"7"` and `[7]` were 7, `{"count": true}` was 1, and a JSON `"perPixel":
// null` overrode `?perPixel=true`. JSON bodies are validated as they are (400 naming the field).
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyServerOptions } from 'fastify';

type BuildValidator = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator'];
type Route = { httpPart?: string; contentType?: string };

/** A number as a person writes one in decimal: `7`, `-0.5`, `1e3`, `.5`. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

type Validate = ((data: unknown) => unknown) & { errors?: unknown };

/** Ajv's coercion reads text as `+text` does: a whitespace-only value (`?seed=%20`, a tab) was the
 * number 0, `0x10` was 16, `0b11` 3 and ` 5` 5. Text for a top-level number or integer field that
 * `+text` reads as a number must spell it in decimal; other text is refused as the wrong type,
 * naming the field, before Ajv coerces it. */
function decimalText(validate: Validate, schema: unknown): Validate {
  const props = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  const numeric = Object.entries(props).filter(([, p]) => p.type === 'number' || p.type === 'integer').map(([k, p]) => [k, p.type as string] as const);
  if (!numeric.length) return validate;
  const checked: Validate = (data: unknown) => {
    for (const [key, type] of numeric) {
      const v = (data as Record<string, unknown> | null | undefined)?.[key];
      // (text that is no number at all, or Infinity, is left to Ajv and http/finite.ts)
      if (typeof v === 'string' && !DECIMAL.test(v) && Number.isFinite(+v)) {
        checked.errors = [{ keyword: 'type', instancePath: `/${key}`, schemaPath: `#/properties/${key}/type`, params: { type }, message: `must be ${type === 'integer' ? 'an integer' : 'a number'} written in decimal` }];
        return false;
      }
    }
    const ok = validate(data);
    checked.errors = validate.errors;
    return ok;
  };
  return checked;
}

export function validatorFactory(): BuildValidator {
  const pool = AjvCompiler();
  return (externalSchemas, options) => {
    const coercing = pool(externalSchemas, options);
    const exact = pool(externalSchemas, { ...options, customOptions: { ...options?.customOptions, coerceTypes: false } } as typeof options);
    // a body schema without content types is a JSON body's (POST /sample)
    return (route: Route & Parameters<typeof coercing>[0]) =>
      route.httpPart === 'body' && (route.contentType ?? 'application/json') === 'application/json' ? exact(route)
        : decimalText(coercing(route) as Validate, route.schema) as ReturnType<typeof coercing>;
  };
}
