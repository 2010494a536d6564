// Display formatting shared by the list and the detail pane.
import type { ExchangeRow } from '../../core/src/inspector/protocol.js';

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local wall-clock time with milliseconds, e.g. 14:03:27.412 */
export function formatClock(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function formatDateTime(epochMs: number | null): string {
  if (epochMs === null) return '';
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatClock(epochMs)}`;
}

/** Path and query of the URL (the request target may be absolute-form). */
export function pathOf(row: Pick<ExchangeRow, 'url' | 'target'>): string {
  try {
    const u = new URL(row.url);
    return `${u.pathname}${u.search}`;
  } catch {
    return row.target;
  }
}

export function durationOf(row: Pick<ExchangeRow, 'startedAt' | 'completedAt'>): number | null {
  return row.completedAt === null ? null : row.completedAt - row.startedAt;
}

const shortProtocol = (p: string) => (p === 'HTTP/1.1' ? 'HTTP/1.1' : p === 'HTTP/1.0' ? 'HTTP/1.0' : p);

/** Protocol per leg: one value when both legs agree, else `client → upstream`; WebSockets say so. */
export function protocolLabel(row: Pick<ExchangeRow, 'protocol' | 'responseProtocol' | 'websocket' | 'status'>): string {
  if (row.websocket) return row.protocol === 'h2' || row.protocol === 'h2c' ? 'ws over h2' : 'ws';
  const client = shortProtocol(row.protocol);
  const upstream = row.responseProtocol ? shortProtocol(row.responseProtocol) : null;
  return upstream && upstream !== client ? `${client} → ${upstream}` : client;
}

export function alpnLabel(row: Pick<ExchangeRow, 'clientAlpn' | 'upstreamAlpn'>): string {
  if (!row.clientAlpn && !row.upstreamAlpn) return '';
  if (row.clientAlpn === row.upstreamAlpn) return row.clientAlpn ?? '';
  return `${row.clientAlpn ?? '—'} | ${row.upstreamAlpn ?? '—'}`;
}

export type StatusClass = 'info' | 'ok' | 'redirect' | 'client-error' | 'server-error' | 'pending' | 'failed';

export function statusClass(row: Pick<ExchangeRow, 'status' | 'state'>): StatusClass {
  if (row.state === 'failed') return 'failed';
  if (row.status === null) return 'pending';
  if (row.status < 200) return 'info';
  if (row.status < 300) return 'ok';
  if (row.status < 400) return 'redirect';
  if (row.status < 500) return 'client-error';
  return 'server-error';
}

/** Why a row carries the error marker, or null. */
export function errorNote(row: Pick<ExchangeRow, 'errorReason' | 'tlsError' | 'state'>): string | null {
  if (row.errorReason) return `failed: ${row.errorReason}`;
  if (row.tlsError) return 'a TLS handshake of this connection failed';
  return null;
}
