import type { FastifyInstance } from 'fastify';
import { Live, Readiness } from '../schemas/health.js';

export default async function healthRoutes(app: FastifyInstance) {
  // A browser opened on the server's address lands on the API's documentation.
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/docs', 302));

  app.get('/health/live', {
    schema: { tags: ['operations'], summary: 'the process is up and serving HTTP', response: { 200: Live } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/health/ready', {
    schema: {
      tags: ['operations'],
      summary: 'the models are loaded and warmed up and the server is not shutting down',
      response: { 200: Readiness, 503: Readiness },
    },
  }, async (_request, reply) => {
    const status = app.lifecycle.state;
    const detail = status === 'failed' ? app.lifecycle.detail : undefined;
    return reply.code(status === 'ready' ? 200 : 503).send({ ready: status === 'ready', status, ...(detail ? { detail } : {}) });
  });
}
