// GET /demo: a page for people to try the models in a browser (sampling streamed slice by slice,
// scoring an uploaded image with its heat map), built only on the public API.
import type { FastifyInstance } from 'fastify';
import { DEMO_HTML } from './demo-page.js';

export default async function demoRoutes(app: FastifyInstance) {
  app.get('/demo', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(DEMO_HTML));
  // the page's links are relative ('models', 'sample'): under /demo/ they would miss, so send it home
  app.get('/demo/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/demo', 301));
}
