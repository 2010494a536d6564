// Reads exchange list rows (ExchangeRow) for the API and the live hub, filtered by a parsed filter
// expression translated to SQL. The store's queries.ts serves plain summaries; the list also
// needs each connection's ALPN per leg and whether a request is a WebSocket handshake.
import type Database from 'better-sqlite3';
import type { FailureReason, HttpProtocol } from '../capture/events.js';
import { filterToSql, WEBSOCKET_SQL } from '../filter/to-sql.js';
import type { FilterExpr } from '../filter/ast.js';
import { toSummary } from '../store/queries.js';
import { prepared } from '../store/prepared.js';
import type { ConnectionSummary, ExchangeRow } from './protocol.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

const ROW_COLUMNS = `e.id, e.connection_id, e.stream_id, e.protocol, e.method, e.url, e.host, e.status, e.status_text,
  e.response_content_type, e.state, e.started_at, e.completed_at, e.request_body_size, e.response_body_size,
  e.error_reason, e.last_seq, e.target, e.scheme, e.port, e.response_protocol, e.response_start_at,
  ${WEBSOCKET_SQL} AS websocket, c.client_tls_alpn, c.upstream_tls_alpn,
  (c.client_tls_error_reason IS NOT NULL OR c.upstream_tls_error_reason IS NOT NULL) AS tls_error`;

const FROM = `FROM exchanges e LEFT JOIN connections c ON c.id = e.connection_id`;

export interface PageOptions {
  filter: FilterExpr | null;
  limit: number;
  order: 'newest' | 'oldest';
  beforeId?: number;
  afterId?: number;
}

/** One page of rows plus whether more exist in that direction. */
export function listRows(db: Db, options: PageOptions): { rows: ExchangeRow[]; hasMore: boolean } {
  const { sql, params } = filterToSql(options.filter);
  const conds = [sql];
  const bound: unknown[] = [...params];
  if (options.beforeId !== undefined) {
    conds.push('e.id < ?');
    bound.push(options.beforeId);
  }
  if (options.afterId !== undefined) {
    conds.push('e.id > ?');
    bound.push(options.afterId);
  }
  const order = options.order === 'newest' ? 'DESC' : 'ASC';
  const rows = prepared(db, `SELECT ${ROW_COLUMNS} ${FROM} WHERE ${conds.join(' AND ')} ORDER BY e.id ${order} LIMIT ?`).all(
    ...bound,
    options.limit + 1,
  ) as Row[];
  const hasMore = rows.length > options.limit;
  return { rows: rows.slice(0, options.limit).map(toRow), hasMore };
}

export interface Classified {
  /** Rows that match the filter, in id order. */
  matching: ExchangeRow[];
  /** Ids that exist but do not match. */
  removed: number[];
}

/** Splits the given exchange ids into matching rows and the ids that do not match. */
export function classifyIds(db: Db, ids: number[], filter: FilterExpr | null, afterId = 0): Classified {
  const { sql, params } = filterToSql(filter);
  const rows = prepared(
    db,
    `SELECT ${ROW_COLUMNS}, ${sql} AS matched ${FROM} WHERE e.id IN (SELECT value FROM json_each(?)) AND e.id > ? ORDER BY e.id`,
  ).all(...params, JSON.stringify(ids), afterId) as Row[];
  return splitMatched(rows);
}

/** Rows changed after `since` (by last_seq), split like classifyIds; null when there are more than `max`. */
export function changedSince(db: Db, since: number, filter: FilterExpr | null, max: number, afterId = 0): Classified | null {
  const { sql, params } = filterToSql(filter);
  const rows = prepared(
    db,
    `SELECT ${ROW_COLUMNS}, ${sql} AS matched ${FROM} WHERE e.last_seq > ? AND e.id > ? ORDER BY e.id LIMIT ?`,
  ).all(...params, since, afterId, max + 1) as Row[];
  if (rows.length > max) return null;
  return splitMatched(rows);
}

function splitMatched(rows: Row[]): Classified {
  const matching: ExchangeRow[] = [];
  const removed: number[] = [];
  for (const r of rows) {
    if (r.matched === 1) matching.push(toRow(r));
    else removed.push(r.id as number);
  }
  return { matching, removed };
}

export function connectionSummaries(db: Db, ids: number[]): ConnectionSummary[] {
  const rows = prepared(
    db,
    `SELECT id, closed_at, error_reason, client_tls_alpn, upstream_tls_alpn, last_seq FROM connections
     WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`,
  ).all(JSON.stringify(ids)) as Row[];
  return rows.map((r) => ({
    id: r.id as number,
    closedAt: r.closed_at as number | null,
    errorReason: r.error_reason as FailureReason | null,
    clientAlpn: r.client_tls_alpn as string | null,
    upstreamAlpn: r.upstream_tls_alpn as string | null,
    lastSeq: r.last_seq as number,
  }));
}

export function isWebSocketExchange(db: Db, id: number): boolean {
  const row = prepared(db, `SELECT ${WEBSOCKET_SQL} AS ws FROM exchanges e WHERE e.id = ?`).get(id) as { ws: number } | undefined;
  return row?.ws === 1;
}

export function connectionExchangeIds(db: Db, connectionId: number, limit = 1000): number[] {
  const rows = prepared(db, 'SELECT id FROM exchanges WHERE connection_id = ? ORDER BY id LIMIT ?').all(connectionId, limit) as Row[];
  return rows.map((r) => r.id as number);
}

function toRow(r: Row): ExchangeRow {
  return {
    ...toSummary(r),
    target: r.target as string,
    scheme: r.scheme as 'http' | 'https',
    port: r.port as number,
    responseProtocol: r.response_protocol as HttpProtocol | null,
    responseStartAt: r.response_start_at as number | null,
    websocket: r.websocket === 1,
    clientAlpn: (r.client_tls_alpn as string | null) ?? null,
    upstreamAlpn: (r.upstream_tls_alpn as string | null) ?? null,
    tlsError: r.tls_error === 1,
  };
}
