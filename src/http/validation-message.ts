// Validation messages that name the field: "body/count must be <= 16",
// "body/colour is not allowed", "body/condition/mode must be one of: upscale, add-depth, complete".
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';

export function schemaErrorFormatter(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const e = errors[0];
  const path = `${dataVar}${e.instancePath ?? ''}`;
  const params = (e.params ?? {}) as Record<string, unknown>;
  let message: string;
  if (e.keyword === 'additionalProperties') message = `${path}/${params.additionalProperty} is not allowed`;
  else if (e.keyword === 'required') message = `${path}/${params.missingProperty} is required`;
  else if (e.keyword === 'anyOf' || e.keyword === 'const') {
    // A union of literals: list the allowed values instead of ajv's "must match a schema in anyOf".
    message = `${path} must be one of the allowed values`;
    const consts = errors.filter((x) => x.keyword === 'const' && x.instancePath === e.instancePath).map((x) => (x.params as { allowedValue: unknown }).allowedValue);
    if (consts.length) message = `${path} must be one of: ${consts.join(', ')}`;
  } else message = `${path} ${e.message}`;
  return new Error(message);
}
