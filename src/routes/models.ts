import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { UnknownModelError } from '../runtime/errors.js';
import { API_KEY_SECURITY, errors } from '../schemas/common.js';
import { ModelList, ModelParams, ModelSummary } from '../schemas/models.js';

export default async function modelRoutes(app: FastifyInstance) {
  app.get('/models', {
    config: { apiKey: true },
    schema: { tags: ['models'], security: API_KEY_SECURITY, summary: 'the loaded models, their test bits/dim and execution provider', response: { 200: ModelList, ...errors(401, 503) } },
  }, async () => {
    const runtime = app.runtime;
    const def = app.defaultModel();
    return { default: def, models: runtime.models().map((m) => ({ ...m, default: m.name === def })) };
  });

  app.get<{ Params: ModelParams }>('/models/:name', {
    config: { apiKey: true },
    schema: { tags: ['models'], security: API_KEY_SECURITY, summary: 'one model', params: ModelParams, response: { 200: Type.Ref(ModelSummary), ...errors(400, 401, 404, 503) } },
  }, async (request) => {
    const m = app.runtime.model(request.params.name);
    if (!m) throw new UnknownModelError(request.params.name);
    return { ...m, default: m.name === app.defaultModel() };
  });
}
