// Host globs as users write them on the command line: `*.test`, `api.example.com`, `10.0.0.*`.
// `*` matches any run of characters (dots included), `?` one character; case-insensitive.

export type HostMatcher = (host: string) => boolean;

export function hostGlob(pattern: string): HostMatcher {
  const source = pattern
    .toLowerCase()
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  const re = new RegExp(`^${source}$`);
  return (host) => re.test(stripBrackets(host).toLowerCase());
}

/** True when any of the globs matches; false for an empty list. */
export function anyHostGlob(patterns: readonly string[]): HostMatcher {
  const matchers = patterns.map(hostGlob);
  return (host) => matchers.some((m) => m(host));
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
