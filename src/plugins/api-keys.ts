// API_KEYS: when set, the routes that sample, score or list models (route config `apiKey`) need
// `Authorization: Bearer <key>` with one of them; others get 401 before their body is read, so an
// unauthenticated upload costs no more than its headers. Health, metrics and the docs stay open
// (probes and scrapers), and so do CORS preflights (browsers send them without credentials).
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import { UnauthorizedError } from '../http/errors.js';

/** The keys of API_KEYS (empty when auth is off). */
export function parseKeys(value: string): string[] {
  return value.split(',').map((k) => k.trim()).filter(Boolean);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const keys = parseKeys(config.API_KEYS).map(digest);
    if (!keys.length) return;
    // Compared as digests, every key every time: the time taken says nothing of how much matched.
    const known = (presented: string) => {
      const d = digest(presented);
      let hit = false;
      for (const k of keys) hit = timingSafeEqual(d, k) || hit;
      return hit;
    };

    app.addHook('onRequest', async (request, reply) => {
      if (!request.routeOptions.config?.apiKey) return;
      const m = /^Bearer[ ]+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (m && known(m[1])) return;
      reply.header('www-authenticate', `Bearer realm="spn-serve"${m ? ', error="invalid_token"' : ''}`);
      throw new UnauthorizedError(m ? 'the API key is not valid' : 'an API key is required: send Authorization: Bearer <key>');
    });
  },
  { name: 'api-keys', fastify: '5.x' },
);

declare module 'fastify' {
  interface FastifyContextConfig {
    /** needs one of API_KEYS when the server sets them */
    apiKey?: boolean;
  }
}
