// `--resolve HOST=ADDRESS`: connect to ADDRESS instead of resolving HOST (like curl's --resolve,
// but HOST may be a glob). The first matching rule wins.
import { isIP } from 'node:net';
import { hostGlob, type HostMatcher } from './host-glob.js';

export interface ResolveRule {
  pattern: string;
  address: string;
}

export class ResolveMap {
  private readonly rules: Array<{ match: HostMatcher; address: string }>;

  constructor(rules: readonly ResolveRule[] = []) {
    this.rules = rules.map((r) => ({ match: hostGlob(r.pattern), address: r.address }));
  }

  /** The mapped address for `host`, or null when it must be resolved normally. */
  lookup(host: string): string | null {
    for (const rule of this.rules) if (rule.match(host)) return rule.address;
    return null;
  }
}

/** Parses `HOST=ADDRESS`; throws with a message fit for the command line. */
export function parseResolveRule(text: string): ResolveRule {
  const eq = text.indexOf('=');
  const pattern = text.slice(0, eq).trim();
  let address = text.slice(eq + 1).trim();
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  if (eq <= 0 || !pattern || !isIP(address)) {
    throw new Error(`--resolve wants HOST=ADDRESS with an IP address, got "${text}"`);
  }
  return { pattern, address };
}
