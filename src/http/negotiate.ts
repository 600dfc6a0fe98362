// Picks the answer's media type from the Accept header (RFC 9110): each offer takes the weight of
// the most specific range that matches it; the highest weight wins, ties go to the offer order.
export function negotiate<T extends string>(accept: string | undefined, offers: readonly T[]): T | undefined {
  if (!accept || !accept.trim()) return offers[0];
  const ranges = accept.split(',').flatMap((part) => {
    const [range, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
    if (!range || !range.includes('/')) return [];
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    return [{ range, q: Number.isFinite(q) ? q : 0 }];
  });
  let best: { offer: T; q: number } | undefined;
  for (const offer of offers) {
    const [type] = offer.split('/');
    let match: { q: number; specificity: number } | undefined;
    for (const { range, q } of ranges) {
      const specificity = range === offer ? 2 : range === `${type}/*` ? 1 : range === '*/*' ? 0 : -1;
      if (specificity >= 0 && (!match || specificity > match.specificity)) match = { q, specificity };
    }
    if (match && match.q > 0 && (!best || match.q > best.q)) best = { offer, q: match.q };
  }
  return best?.offer;
}
