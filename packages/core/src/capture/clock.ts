// Epoch milliseconds with sub-millisecond precision, monotonic within the process.
import { performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;

export function nowMs(): number {
  return origin + performance.now();
}
