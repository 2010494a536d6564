// A short account of a capture for a terminal or a CI log: requests by host and outcome, the
// failures, tunnels whose traffic was not decoded, and, given an allow-list of host globs, every
// request and tunnel that went elsewhere.
import type Database from 'better-sqlite3';
import { anyHostGlob } from '../net/host-glob.js';
import { readLastIds } from '../store/open-store.js';
import { getConnection, getExchange, listExchanges } from '../store/queries.js';
import type { ExchangeSummary } from '../store/row-types.js';

export interface SummaryOptions {
  /** Only exchanges and connections with larger ids (what an earlier run left in the file is skipped). */
  afterExchangeId?: number;
  afterConnectionId?: number;
  /** Host globs requests may go to; omitted: no allow-list check. */
  allowedHosts?: string[];
}

export interface HostLine {
  host: string;
  total: number;
  /** Outcome label (`200`, `failed: dns`, `no response`, `tunnel: TLS not decrypted`) and its count. */
  outcomes: Array<[label: string, count: number]>;
}

export interface FailedRequest {
  exchangeId: number;
  method: string;
  url: string;
  reason: string;
  message: string;
}

export interface Offender {
  host: string;
  /** `GET http://x/y (exchange 4)` or `CONNECT x:443 (connection 7, TLS not decrypted)`. */
  description: string;
}

export interface CaptureSummary {
  requests: number;
  failed: number;
  /** Tunnels in which no HTTP request was decoded (blind TLS, other protocols, failed CONNECTs). */
  opaqueTunnels: number;
  hosts: HostLine[];
  failures: FailedRequest[];
  /** Null when no allow-list was given. */
  unexpected: Offender[] | null;
}

export function summarizeCapture(db: Database.Database, options: SummaryOptions = {}): CaptureSummary {
  const allowed = options.allowedHosts ? anyHostGlob(options.allowedHosts) : null;
  const tallies = new Map<string, Map<string, number>>();
  const count = (host: string, label: string) => {
    let outcomes = tallies.get(host);
    if (!outcomes) tallies.set(host, (outcomes = new Map()));
    outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
  };
  const failures: FailedRequest[] = [];
  const unexpected: Offender[] = [];
  const hostsByConnection = new Map<number, Set<string>>();
  let requests = 0;
  let afterId = options.afterExchangeId ?? 0;
  for (;;) {
    const page = listExchanges(db, { afterId, limit: 1000, order: 'oldest' });
    if (page.length === 0) break;
    for (const ex of page) {
      requests++;
      count(ex.host, outcomeOf(ex));
      if (ex.state === 'failed') {
        // The list row has the reason only; the message costs one more look-up, for failures only.
        const message = getExchange(db, ex.id)?.error?.message ?? '';
        failures.push({ exchangeId: ex.id, method: ex.method, url: ex.url, reason: ex.errorReason ?? 'failed', message });
      }
      let hosts = hostsByConnection.get(ex.connectionId);
      if (!hosts) hostsByConnection.set(ex.connectionId, (hosts = new Set()));
      hosts.add(ex.host.toLowerCase());
      if (allowed && !allowed(ex.host)) unexpected.push({ host: ex.host, description: `${ex.method} ${ex.url} (exchange ${ex.id})` });
    }
    afterId = page[page.length - 1].id;
  }

  let opaqueTunnels = 0;
  const lastConnection = readLastIds(db).connId;
  for (let id = (options.afterConnectionId ?? 0) + 1; id <= lastConnection; id++) {
    const conn = getConnection(db, id);
    if (!conn?.tunnel) continue;
    const { host, port } = conn.tunnel;
    const decoded = hostsByConnection.get(id);
    const what = conn.error && !conn.upstream
      ? `CONNECT failed: ${conn.error.reason}`
      : conn.detectedProtocol === 'tls' && !conn.intercepted
        ? 'TLS not decrypted'
        : `${conn.detectedProtocol ?? 'no data'}, no HTTP decoded`;
    if (!decoded) {
      opaqueTunnels++;
      count(host, `tunnel: ${what}`);
    }
    // A tunnel's own target counts too: the bytes went there whatever the Host headers inside said.
    if (allowed && !allowed(host) && !decoded?.has(host.toLowerCase())) {
      unexpected.push({ host, description: `CONNECT ${host}:${port} (connection ${id}${decoded ? '' : `, ${what}`})` });
    }
  }

  const hosts = [...tallies].map(([host, outcomes]) => ({
    host,
    total: [...outcomes.values()].reduce((a, b) => a + b, 0),
    outcomes: [...outcomes].sort(([a], [b]) => a.localeCompare(b)),
  }));
  hosts.sort((a, b) => b.total - a.total || a.host.localeCompare(b.host));
  return { requests, failed: failures.length, opaqueTunnels, hosts, failures, unexpected: allowed ? unexpected : null };
}

function outcomeOf(ex: ExchangeSummary): string {
  if (ex.state === 'failed') return `failed: ${ex.errorReason ?? 'unknown'}`;
  if (ex.status === null) return 'no response';
  return String(ex.status);
}

const LIST_LIMIT = 50;

/** The summary as lines for stderr, each starting with `hopscope:` or an indent. */
export function formatSummary(summary: CaptureSummary, allowedHosts: string[] = []): string {
  const lines: string[] = [];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const head = [`${plural(summary.requests, 'request')} to ${plural(summary.hosts.length, 'host')}`];
  if (summary.failed > 0) head.push(`${summary.failed} failed`);
  if (summary.opaqueTunnels > 0) head.push(`${plural(summary.opaqueTunnels, 'tunnel')} without decoded requests`);
  lines.push(`hopscope: ${head.join(', ')}`);
  const width = Math.min(40, Math.max(0, ...summary.hosts.map((h) => h.host.length)));
  for (const h of summary.hosts.slice(0, LIST_LIMIT)) {
    lines.push(`  ${h.host.padEnd(width)}  ${h.outcomes.map(([label, n]) => `${label} ×${n}`).join(', ')}`);
  }
  more(lines, summary.hosts.length, 'hosts');
  if (summary.failures.length > 0) {
    lines.push('hopscope: failed requests:');
    for (const f of summary.failures.slice(0, LIST_LIMIT)) {
      lines.push(`  ${f.method} ${f.url}: ${f.reason}${f.message ? ` (${f.message})` : ''} [exchange ${f.exchangeId}]`);
    }
    more(lines, summary.failures.length, 'failures');
  }
  return `${lines.join('\n')}\n${formatUnexpected(summary, allowedHosts)}`;
}

/** The allow-list offenders alone ('' when there are none or no allow-list was given). */
export function formatUnexpected(summary: CaptureSummary, allowedHosts: string[]): string {
  const offenders = summary.unexpected ?? [];
  if (offenders.length === 0) return '';
  const lines = [
    `hopscope: ${offenders.length} ${offenders.length === 1 ? 'request' : 'requests'} went to hosts outside --fail-on-unexpected-host ${allowedHosts.join(' ')}:`,
  ];
  for (const o of offenders.slice(0, LIST_LIMIT)) lines.push(`  ${o.description}`);
  more(lines, offenders.length, 'more');
  return `${lines.join('\n')}\n`;
}

function more(lines: string[], total: number, what: string): void {
  if (total > LIST_LIMIT) lines.push(`  … and ${total - LIST_LIMIT} ${what === 'more' ? 'more' : `more ${what}`}`);
}
