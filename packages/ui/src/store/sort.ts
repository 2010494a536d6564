// Sort orders of the exchange list. Every comparator ends on the id, so the order is total and a
// row can be found again by binary search.
import type { ExchangeRow } from '../../../core/src/inspector/protocol.js';
import { alpnLabel, durationOf, pathOf, protocolLabel } from '../format.js';

export type SortKey = 'id' | 'method' | 'host' | 'path' | 'status' | 'protocol' | 'alpn' | 'size' | 'duration';
export interface SortSpec {
  key: SortKey;
  dir: 'asc' | 'desc';
}

export const DEFAULT_SORT: SortSpec = { key: 'id', dir: 'asc' };

type KeyOf = (row: ExchangeRow) => string | number | null;

const KEYS: Record<SortKey, KeyOf> = {
  id: (r) => r.id,
  method: (r) => r.method,
  host: (r) => r.host,
  path: (r) => pathOf(r),
  status: (r) => r.status,
  protocol: (r) => protocolLabel(r),
  alpn: (r) => alpnLabel(r) || null,
  size: (r) => r.responseBodySize,
  duration: (r) => durationOf(r),
};

export type Comparator = (a: ExchangeRow, b: ExchangeRow) => number;

export function comparator(sort: SortSpec): Comparator {
  const key = KEYS[sort.key];
  const sign = sort.dir === 'asc' ? 1 : -1;
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    if (ka !== kb) {
      // Missing values sit at the end in both directions.
      if (ka === null) return 1;
      if (kb === null) return -1;
      const c = ka < kb ? -1 : ka > kb ? 1 : 0;
      if (c !== 0) return c * sign;
    }
    return (a.id - b.id) * sign;
  };
}

/** The sort key of a row changed between two versions of it. */
export function keyChanged(sort: SortSpec, a: ExchangeRow, b: ExchangeRow): boolean {
  return KEYS[sort.key](a) !== KEYS[sort.key](b);
}

/** Index of the first element not less than `row` (lower bound). */
export function lowerBound(ids: number[], byId: Map<number, ExchangeRow>, row: ExchangeRow, cmp: Comparator): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(byId.get(ids[mid])!, row) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
