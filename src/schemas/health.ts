import { Type } from '@sinclair/typebox';

export const Live = Type.Object({ status: Type.Literal('ok') });

export const Readiness = Type.Object({
  ready: Type.Boolean(),
  status: Type.Union(['ready', 'loading', 'recovering', 'failed', 'shutting_down'].map((s) => Type.Literal(s)), {
    description: 'recovering: every inference worker crashed and replacements are loading (requests would wait for them)',
  }),
  detail: Type.Optional(Type.String()),
});
