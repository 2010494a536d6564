// `HOST:PORT` as given to --listen and friends; IPv6 hosts in brackets.

export function parseHostPort(text: string, option: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${option} wants HOST:PORT (port 0 picks a free one), got "${text}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}
