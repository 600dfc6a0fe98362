import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';

export default async function metricsRoutes(app: FastifyInstance) {
  app.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format)',
      response: { 200: { description: 'metrics', content: { 'text/plain': { schema: Type.String() } } } },
    },
  }, async (_request, reply) => {
    const { registry } = app.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
