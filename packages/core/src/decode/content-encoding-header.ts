// Which content codings (RFC 9110 §8.4.1) a message says it applied. Pure, without Node imports:
// the UI bundles it as is, and decode/content-coding.ts undoes the codings on Node.
import type { HeaderList } from '../capture/events.js';

/** The Content-Encoding codings in the order they were applied. */
export function contentCodings(headers: HeaderList | null): string[] {
  const codings: string[] = [];
  for (const [name, value] of headers ?? []) {
    if (name.toLowerCase() !== 'content-encoding') continue;
    for (const c of value.split(',')) {
      const coding = c.trim().toLowerCase();
      if (coding && coding !== 'identity') codings.push(coding);
    }
  }
  return codings;
}
