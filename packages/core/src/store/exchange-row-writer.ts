// Most exchanges start and end within one flush interval. Writing their request, response,
// trailers and completion as four statements (each touching the row and its indexes) made the
// store the largest cost per exchange; this folds them into one INSERT of the row as it stands
// at the end of the batch. Exchanges that span batches continue with statement-per-event updates.
import type Database from 'better-sqlite3';
import type { CaptureEvent, Failure, HeaderList } from '../capture/events.js';
import type { QueueItem } from './batch-writer.js';

type Ev<K extends CaptureEvent['kind']> = Extract<CaptureEvent, { kind: K }>;

/** An exchange whose request and some later events arrived in the same batch. */
export interface ExchangeRowWrite {
  kind: 'exchange.row';
  request: Ev<'http.request'>;
  response: Ev<'http.response'> | null;
  requestTrailers: HeaderList | null;
  responseTrailers: HeaderList | null;
  end: Ev<'http.completed'> | Ev<'http.failed'> | null;
  seq: number;
}

/**
 * Replaces every exchange's request/response/trailers/completion events of this batch by one
 * `exchange.row`, written where its request was: later statements that touch the row (a push
 * link, a WebSocket, a body) still find it. Everything else keeps its order.
 */
export function coalesceExchangeRows(batch: QueueItem[]): QueueItem[] {
  const rows = new Map<number, ExchangeRowWrite>();
  for (const item of batch) foldInto(rows, item);
  if (rows.size === 0) return batch;
  const out: QueueItem[] = [];
  for (const item of batch) {
    if (absorbedId(item, rows) === null) out.push(item);
    else if (item.kind === 'http.request') out.push(rows.get(item.exchangeId)!);
  }
  return out;
}

function foldInto(rows: Map<number, ExchangeRowWrite>, item: QueueItem): void {
  if (item.kind === 'http.request') {
    const row: ExchangeRowWrite = {
      kind: 'exchange.row',
      request: item,
      response: null,
      requestTrailers: null,
      responseTrailers: null,
      end: null,
      seq: item.seq,
    };
    rows.set(item.exchangeId, row);
    return;
  }
  if (item.kind !== 'http.response' && item.kind !== 'http.trailers' && item.kind !== 'http.completed' && item.kind !== 'http.failed') {
    return;
  }
  const row = rows.get(item.exchangeId);
  if (!row) return;
  if (item.kind === 'http.response') row.response = item;
  else if (item.kind === 'http.trailers') {
    if (item.side === 'client') row.requestTrailers = item.headers;
    else row.responseTrailers = item.headers;
  } else row.end = item;
  row.seq = item.seq;
}

function absorbedId(item: QueueItem, rows: Map<number, ExchangeRowWrite>): number | null {
  switch (item.kind) {
    case 'http.request':
    case 'http.response':
    case 'http.trailers':
    case 'http.completed':
    case 'http.failed':
      return rows.has(item.exchangeId) ? item.exchangeId : null;
    default:
      return null;
  }
}

const json = (value: unknown) => JSON.stringify(value);
const contentType = (headers: HeaderList) => headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? null;

export class ExchangeRowWriter {
  private readonly insert: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare(`INSERT INTO exchanges (id, connection_id, stream_id, protocol, method, target, url, scheme, host,
      port, request_headers, request_trailers, status, status_text, response_protocol, response_headers, response_trailers,
      response_content_type, remote_address, remote_port, started_at, request_end_at, response_start_at, completed_at,
      dns_ms, connect_ms, tls_ms, request_body_size, response_body_size, state, error_reason, error_message, error_code, last_seq,
      upstream_url)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  /** Inserts the row; returns the number of rows changed. */
  write(row: ExchangeRowWrite): number {
    const { request: q, response: r, end } = row;
    const t = end?.timings;
    const failure: Failure | null = end?.kind === 'http.failed' ? end.error : null;
    const state = end ? (end.kind === 'http.failed' ? 'failed' : 'complete') : r ? 'responded' : 'pending';
    return this.insert.run(
      q.exchangeId, q.connId, q.streamId, q.protocol, q.method, q.target, q.url, q.scheme, q.host, q.port, json(q.headers),
      row.requestTrailers ? json(row.requestTrailers) : null,
      r?.status ?? null, r?.statusText ?? null, r?.protocol ?? null, r ? json(r.headers) : null,
      row.responseTrailers ? json(row.responseTrailers) : null,
      r ? contentType(r.headers) : null, r?.remoteAddress ?? null, r?.remotePort ?? null,
      q.time, t?.requestEnd ?? null, t?.responseStart ?? r?.time ?? null, end?.time ?? null,
      t?.dnsMs ?? null, t?.connectMs ?? null, t?.tlsMs ?? null,
      end?.requestBodySize ?? null, end?.responseBodySize ?? null, state,
      failure?.reason ?? null, failure?.message ?? null, failure?.code ?? null, row.seq,
      q.upstreamUrl ?? null,
    ).changes;
  }
}
