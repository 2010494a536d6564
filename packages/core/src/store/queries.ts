// The reading API over a capture file, shared by the inspector and the exporters. SQL stays here;
// callers get camelCase objects (row-types.ts) with JSON columns parsed back.
import type Database from 'better-sqlite3';
import type {
  CertificateInfo,
  DetectedProtocol,
  Failure,
  FailureReason,
  HeaderList,
  HttpProtocol,
  Side,
  TunnelVia,
} from '../capture/events.js';
import type {
  ConnectionDetail,
  DecodeErrorRow,
  ExchangeDetail,
  ExchangeFilter,
  ExchangeState,
  ExchangeSummary,
  IterateExchangesOptions,
  ListExchangesOptions,
  StoredBody,
  TlsLegDetail,
} from './row-types.js';
import { prepared } from './prepared.js';

export { countWsMessages, getWebSocket, getWsMessage, listWsFrames, listWsMessages } from './ws-queries.js';
export { countH2Frames, listH2Frames } from './h2-queries.js';

type Row = Record<string, unknown>;
type Db = Database.Database;

const SUMMARY_COLUMNS = `e.id, e.connection_id, e.stream_id, e.protocol, e.method, e.url, e.host, e.status, e.status_text,
  e.response_content_type, e.state, e.started_at, e.completed_at, e.request_body_size, e.response_body_size,
  e.error_reason, e.last_seq`;

const DETAIL_SELECT = `SELECT e.*,
    rq.data AS rq_data, rq.size AS rq_size, rq.truncated AS rq_truncated,
    rs.data AS rs_data, rs.size AS rs_size, rs.truncated AS rs_truncated
  FROM exchanges e
  LEFT JOIN bodies rq ON rq.exchange_id = e.id AND rq.side = 'request'
  LEFT JOIN bodies rs ON rs.exchange_id = e.id AND rs.side = 'response'`;

/** Builds the WHERE clause of a filter; values are always bound, never spliced. */
function whereClause(filter: ExchangeFilter): { sql: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const add = (cond: string, ...values: unknown[]) => {
    conds.push(cond);
    params.push(...values);
  };
  if (filter.afterId !== undefined) add('e.id > ?', filter.afterId);
  if (filter.beforeId !== undefined) add('e.id < ?', filter.beforeId);
  if (filter.host !== undefined) add('e.host = ?', filter.host);
  if (filter.method !== undefined) add('e.method = ?', filter.method);
  if (filter.connectionId !== undefined) add('e.connection_id = ?', filter.connectionId);
  if (typeof filter.status === 'number') add('e.status = ?', filter.status);
  else if (filter.status) add('e.status BETWEEN ? AND ?', filter.status.min, filter.status.max);
  if (filter.search) add(`e.url LIKE ? ESCAPE '\\'`, `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  return { sql: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

const orderBy = (order: 'newest' | 'oldest') => `ORDER BY e.id ${order === 'newest' ? 'DESC' : 'ASC'}`;

/** One page of exchanges; page on with `beforeId` (newest first) or `afterId` (oldest first). */
export function listExchanges(db: Db, options: ListExchangesOptions): ExchangeSummary[] {
  const { sql, params } = whereClause(options);
  const rows = prepared(
    db,
    `SELECT ${SUMMARY_COLUMNS} FROM exchanges e ${sql} ${orderBy(options.order ?? 'newest')} LIMIT ?`,
  ).all(...params, Math.max(0, Math.floor(options.limit))) as Row[];
  return rows.map(toSummary);
}

export function countExchanges(db: Db, filter: ExchangeFilter = {}): number {
  const { sql, params } = whereClause(filter);
  return (prepared(db, `SELECT count(*) AS n FROM exchanges e ${sql}`).get(...params) as { n: number }).n;
}

export function getExchange(db: Db, id: number): ExchangeDetail | null {
  const row = prepared(db, `${DETAIL_SELECT} WHERE e.id = ?`).get(id) as Row | undefined;
  return row ? toDetail(row) : null;
}

/**
 * Streams full exchanges (headers and bodies) one row at a time, oldest first by default.
 * The database connection is busy until the iteration ends: finish or `return()` it first.
 */
export function* iterateExchanges(db: Db, options: IterateExchangesOptions = {}): Generator<ExchangeDetail> {
  const { sql, params } = whereClause(options);
  const limit = options.limit === undefined ? '' : 'LIMIT ?';
  if (options.limit !== undefined) params.push(Math.max(0, Math.floor(options.limit)));
  // A statement of its own: a cached one could be busy in another unfinished iteration.
  const stmt = db.prepare(`${DETAIL_SELECT} ${sql} ${orderBy(options.order ?? 'oldest')} ${limit}`);
  for (const row of stmt.iterate(...params)) yield toDetail(row as Row);
}

export function getConnection(db: Db, id: number): ConnectionDetail | null {
  const r = prepared(db, 'SELECT * FROM connections WHERE id = ?').get(id) as Row | undefined;
  if (!r) return null;
  return {
    id: r.id as number,
    parentId: r.parent_id as number | null,
    listener: r.listener as string,
    clientAddress: r.client_address as string,
    clientPort: r.client_port as number,
    openedAt: r.opened_at as number,
    closedAt: r.closed_at as number | null,
    tunnel:
      r.tunnel_host === null
        ? null
        : {
            host: r.tunnel_host as string,
            port: r.tunnel_port as number,
            target: r.tunnel_target as string,
            headers: parseJson<HeaderList>(r.tunnel_headers) ?? [],
            via: (r.tunnel_via as TunnelVia | null) ?? 'connect',
            user: (r.proxy_user as string | null) ?? null,
          },
    upstream:
      r.upstream_address === null
        ? null
        : {
            remoteAddress: r.upstream_address as string,
            remotePort: r.upstream_port as number,
            dnsMs: r.dns_ms as number | null,
            connectMs: r.connect_ms as number | null,
          },
    detectedProtocol: r.detected_protocol as DetectedProtocol | null,
    intercepted: r.intercepted === null ? null : r.intercepted === 1,
    hello:
      r.hello_version === null
        ? null
        : {
            sni: r.hello_sni as string | null,
            alpn: parseJson<string[]>(r.hello_alpn) ?? [],
            version: r.hello_version as number,
            supportedVersions: parseJson<number[]>(r.hello_supported_versions) ?? [],
          },
    tls: { client: tlsLeg(r, 'client'), upstream: tlsLeg(r, 'upstream') },
    bytesFromClient: r.bytes_from_client as number | null,
    bytesFromServer: r.bytes_from_server as number | null,
    error: failure(r, 'error_'),
    decodeErrors: listDecodeErrors(db, id),
    lastSeq: r.last_seq as number,
  };
}

export function listDecodeErrors(db: Db, connectionId: number): DecodeErrorRow[] {
  const rows = prepared(db, 'SELECT * FROM decode_errors WHERE connection_id = ? ORDER BY id').all(connectionId) as Row[];
  return rows.map(toDecodeError);
}

// ---- row mapping ----------------------------------------------------------------------------

function parseJson<T>(value: unknown): T | null {
  return typeof value === 'string' ? (JSON.parse(value) as T) : null;
}

function failure(r: Row, prefix: string): Failure | null {
  const reason = r[`${prefix}reason`];
  if (reason === null || reason === undefined) return null;
  const f: Failure = { reason: reason as FailureReason, message: (r[`${prefix}message`] as string | null) ?? '' };
  const code = r[`${prefix}code`];
  if (typeof code === 'string') f.code = code;
  return f;
}

function tlsLeg(r: Row, leg: 'client' | 'upstream'): TlsLegDetail | null {
  const p = `${leg}_tls_`;
  // alpn_offered is written by both tls.established and tls.failed, so it marks a recorded leg.
  if (r[`${p}alpn_offered`] === null) return null;
  return {
    sni: r[`${p}sni`] as string | null,
    alpnOffered: parseJson<string[]>(r[`${p}alpn_offered`]) ?? [],
    alpn: r[`${p}alpn`] as string | null,
    version: r[`${p}version`] as string | null,
    cipher: r[`${p}cipher`] as string | null,
    handshakeMs: r[`${p}handshake_ms`] as number | null,
    certificates: parseJson<CertificateInfo[]>(r[`${p}certificates`]) ?? [],
    error: failure(r, `${p}error_`),
  };
}

/** A list row of `exchanges` (snake_case SQL) as an ExchangeSummary; other readers extend it. */
export function toSummary(r: Row): ExchangeSummary {
  return {
    id: r.id as number,
    connectionId: r.connection_id as number,
    streamId: r.stream_id as number | null,
    protocol: r.protocol as HttpProtocol,
    method: r.method as string,
    url: r.url as string,
    host: r.host as string,
    status: r.status as number | null,
    statusText: r.status_text as string | null,
    responseContentType: r.response_content_type as string | null,
    state: r.state as ExchangeState,
    startedAt: r.started_at as number,
    completedAt: r.completed_at as number | null,
    requestBodySize: r.request_body_size as number | null,
    responseBodySize: r.response_body_size as number | null,
    errorReason: r.error_reason as FailureReason | null,
    lastSeq: r.last_seq as number,
  };
}

function body(r: Row, prefix: 'rq_' | 'rs_'): StoredBody | null {
  const data = r[`${prefix}data`];
  if (!Buffer.isBuffer(data)) return null;
  return { data, size: r[`${prefix}size`] as number, truncated: r[`${prefix}truncated`] === 1 };
}

function toDetail(r: Row): ExchangeDetail {
  return {
    ...toSummary(r),
    target: r.target as string,
    scheme: r.scheme as 'http' | 'https',
    port: r.port as number,
    requestHeaders: parseJson<HeaderList>(r.request_headers) ?? [],
    requestTrailers: parseJson<HeaderList>(r.request_trailers),
    responseProtocol: r.response_protocol as HttpProtocol | null,
    responseHeaders: parseJson<HeaderList>(r.response_headers),
    responseTrailers: parseJson<HeaderList>(r.response_trailers),
    remoteAddress: r.remote_address as string | null,
    remotePort: r.remote_port as number | null,
    requestEndAt: r.request_end_at as number | null,
    responseStartAt: r.response_start_at as number | null,
    dnsMs: r.dns_ms as number | null,
    connectMs: r.connect_ms as number | null,
    tlsMs: r.tls_ms as number | null,
    error: failure(r, 'error_'),
    requestBody: body(r, 'rq_'),
    responseBody: body(r, 'rs_'),
    pushedBy: (r.pushed_by as number | null | undefined) ?? null,
    upstreamUrl: (r.upstream_url as string | null | undefined) ?? null,
  };
}

function toDecodeError(r: Row): DecodeErrorRow {
  return {
    id: r.id as number,
    connectionId: r.connection_id as number,
    decoder: r.decoder as string,
    side: r.side as Side,
    code: r.code as string,
    message: r.message as string,
    occurredAt: r.occurred_at as number,
    seq: r.seq as number,
  };
}
