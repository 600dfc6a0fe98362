import { Type } from '@sinclair/typebox';

export const Live = Type.Object({ status: Type.Literal('ok') });

export const Readiness = Type.Object({
  ready: Type.Boolean(),
  status: Type.Union(['ready', 'loading', 'failed', 'shutting_down'].map((s) => Type.Literal(s))),
  detail: Type.Optional(Type.String()),
});
