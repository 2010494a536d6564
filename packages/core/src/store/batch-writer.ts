// Applies batches of queued capture items to the tables in one transaction: inline on the
// caller's connection, or in the writer worker (writer-worker.ts). Every SQL write of the core
// tables is here; WebSocket, HTTP/2 and folded exchange rows have writers of their own.
import type Database from 'better-sqlite3';
import type { CaptureEvent, Failure, HeaderList } from '../capture/events.js';
import type { BodySide } from './row-types.js';
import { WsRowWriter } from './ws-writer.js';
import { coalesceExchangeRows, ExchangeRowWriter, type ExchangeRowWrite } from './exchange-row-writer.js';
import { H2RowWriter, type H2FrameSummary } from './h2-writer.js';

export interface BodyWrite {
  kind: 'body.write';
  exchangeId: number;
  side: BodySide;
  chunks: Uint8Array[];
  stored: number;
  size: number;
  truncated: boolean;
  seq: number;
}

export type QueueItem = CaptureEvent | BodyWrite | H2FrameSummary | ExchangeRowWrite;

export interface Touched {
  exchangeIds: Set<number>;
  connIds: Set<number>;
  eventErrors: number;
}

const json = (value: unknown) => JSON.stringify(value);
const failureCols = (f: Failure | null) => [f?.reason ?? null, f?.message ?? null, f?.code ?? null];
const contentType = (headers: HeaderList) => headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1] ?? null;

/** Errors caused by one event's data (a duplicate id, a value SQLite cannot bind): skip the event. */
function isEventError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return err instanceof TypeError || err instanceof RangeError || (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT'));
}

/** The prepared statements and the per-event SQL. Created on the first flush. */
/** Applies batches of queued items to the tables; runs inline or in the writer worker. */
export class BatchWriter {
  private readonly s;
  private readonly ws: WsRowWriter;
  private readonly rows: ExchangeRowWriter;
  private readonly h2: H2RowWriter;
  private readonly tx: (batch: QueueItem[], onEventError: (err: unknown) => void) => Touched;

  constructor(db: Database.Database) {
    const tls = (leg: 'client' | 'upstream') =>
      db.prepare(`UPDATE connections SET ${leg}_tls_sni = ?, ${leg}_tls_alpn_offered = ?, ${leg}_tls_alpn = ?,
        ${leg}_tls_version = ?, ${leg}_tls_cipher = ?, ${leg}_tls_handshake_ms = ?, ${leg}_tls_certificates = ?,
        ${leg}_tls_error_reason = ?, ${leg}_tls_error_message = ?, ${leg}_tls_error_code = ?, last_seq = ? WHERE id = ?`);
    const ended = (state: 'complete' | 'failed') =>
      db.prepare(`UPDATE exchanges SET state = '${state}', completed_at = ?, request_body_size = ?, response_body_size = ?,
        dns_ms = coalesce(?, dns_ms), connect_ms = coalesce(?, connect_ms), tls_ms = coalesce(?, tls_ms),
        request_end_at = coalesce(?, request_end_at), response_start_at = coalesce(?, response_start_at),
        error_reason = ?, error_message = ?, error_code = ?, last_seq = ? WHERE id = ?`);
    this.s = {
      connOpened: db.prepare(`INSERT INTO connections (id, parent_id, listener, client_address, client_port, opened_at, last_seq)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      connTunnel: db.prepare(`UPDATE connections SET tunnel_host = ?, tunnel_port = ?, tunnel_target = ?, tunnel_headers = ?,
        tunnel_via = ?, proxy_user = ?, last_seq = ? WHERE id = ?`),
      connUpstream: db.prepare(`UPDATE connections SET upstream_address = ?, upstream_port = ?, dns_ms = ?, connect_ms = ?,
        last_seq = ? WHERE id = ?`),
      connDetected: db.prepare(`UPDATE connections SET detected_protocol = ?, intercepted = ?, hello_sni = ?, hello_alpn = ?,
        hello_version = ?, hello_supported_versions = ?, last_seq = ? WHERE id = ?`),
      connClosed: db.prepare(`UPDATE connections SET closed_at = ?, bytes_from_client = ?, bytes_from_server = ?,
        error_reason = ?, error_message = ?, error_code = ?, last_seq = ? WHERE id = ?`),
      tlsClient: tls('client'),
      tlsUpstream: tls('upstream'),
      request: db.prepare(`INSERT INTO exchanges (id, connection_id, stream_id, protocol, method, target, url, scheme, host,
        port, request_headers, upstream_url, started_at, state, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`),
      response: db.prepare(`UPDATE exchanges SET status = ?, status_text = ?, response_protocol = ?, response_headers = ?,
        response_content_type = ?, remote_address = coalesce(?, remote_address), remote_port = coalesce(?, remote_port),
        response_start_at = ?, state = CASE state WHEN 'pending' THEN 'responded' ELSE state END, last_seq = ? WHERE id = ?`),
      requestTrailers: db.prepare(`UPDATE exchanges SET request_trailers = ?, last_seq = ? WHERE id = ?`),
      responseTrailers: db.prepare(`UPDATE exchanges SET response_trailers = ?, last_seq = ? WHERE id = ?`),
      completed: ended('complete'),
      failed: ended('failed'),
      body: db.prepare(`INSERT INTO bodies (exchange_id, side, size, truncated, seq, data)
        SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM exchanges WHERE id = ?)
        ON CONFLICT (exchange_id, side) DO UPDATE SET size = excluded.size, truncated = excluded.truncated,
        seq = excluded.seq, data = excluded.data`),
      decodeFailed: db.prepare(`INSERT INTO decode_errors (connection_id, decoder, side, code, message, occurred_at, seq)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
    };
    this.ws = new WsRowWriter(db);
    this.rows = new ExchangeRowWriter(db);
    this.h2 = new H2RowWriter(db);
    this.tx = db.transaction((batch: QueueItem[], onEventError: (err: unknown) => void) => {
      const touched: Touched = { exchangeIds: new Set(), connIds: new Set(), eventErrors: 0 };
      for (const item of coalesceExchangeRows(batch)) {
        try {
          this.apply(item, touched);
        } catch (err) {
          if (!isEventError(err)) throw err;
          touched.eventErrors++;
          onEventError(err);
        }
      }
      return touched;
    });
  }

  write(batch: QueueItem[], onEventError: (err: unknown) => void): Touched {
    return this.tx(batch, onEventError);
  }

  private apply(e: QueueItem, t: Touched): void {
    const s = this.s;
    const conn = (id: number, changes: number) => changes > 0 && t.connIds.add(id);
    const exch = (id: number, changes: number) => changes > 0 && t.exchangeIds.add(id);
    switch (e.kind) {
      case 'conn.opened':
        conn(e.connId, s.connOpened.run(e.connId, e.parentId, e.listener, e.clientAddress, e.clientPort, e.time, e.seq).changes);
        break;
      case 'conn.tunnel':
        conn(e.connId, s.connTunnel.run(e.host, e.port, e.target, json(e.headers), e.via ?? 'connect', e.user ?? null, e.seq, e.connId).changes);
        break;
      case 'conn.upstream':
        conn(e.connId, s.connUpstream.run(e.remoteAddress, e.remotePort, e.dnsMs, e.connectMs, e.seq, e.connId).changes);
        break;
      case 'conn.detected': {
        const h = e.hello;
        const hello = h ? [h.sni, json(h.alpn), h.version, json(h.supportedVersions)] : [null, null, null, null];
        conn(e.connId, s.connDetected.run(e.protocol, e.intercepted ? 1 : 0, ...hello, e.seq, e.connId).changes);
        break;
      }
      case 'conn.closed':
        conn(e.connId, s.connClosed.run(e.time, e.bytesFromClient, e.bytesFromServer, ...failureCols(e.error), e.seq, e.connId).changes);
        break;
      case 'tls.established':
      case 'tls.failed': {
        const ok = e.kind === 'tls.established';
        const stmt = e.leg === 'client' ? s.tlsClient : s.tlsUpstream;
        const info = ok ? [e.alpn, e.version, e.cipher, e.handshakeMs] : [null, null, null, null];
        const failure = failureCols(ok ? null : e.error);
        conn(e.connId, stmt.run(e.sni, json(e.alpnOffered), ...info, json(e.certificates), ...failure, e.seq, e.connId).changes);
        break;
      }
      case 'decode.failed':
        s.decodeFailed.run(e.connId, e.decoder, e.side, e.code, e.message, e.time, e.seq);
        t.connIds.add(e.connId);
        break;
      case 'http.request':
        exch(e.exchangeId, s.request.run(e.exchangeId, e.connId, e.streamId, e.protocol, e.method, e.target, e.url, e.scheme,
          e.host, e.port, json(e.headers), e.upstreamUrl ?? null, e.time, e.seq).changes);
        break;
      case 'http.response':
        exch(e.exchangeId, s.response.run(e.status, e.statusText, e.protocol, json(e.headers), contentType(e.headers),
          e.remoteAddress ?? null, e.remotePort ?? null, e.time, e.seq, e.exchangeId).changes);
        break;
      case 'http.trailers': {
        const stmt = e.side === 'client' ? s.requestTrailers : s.responseTrailers;
        exch(e.exchangeId, stmt.run(json(e.headers), e.seq, e.exchangeId).changes);
        break;
      }
      case 'http.completed':
      case 'http.failed': {
        const tm = e.timings;
        const failure = failureCols(e.kind === 'http.failed' ? e.error : null);
        const stmt = e.kind === 'http.failed' ? s.failed : s.completed;
        exch(e.exchangeId, stmt.run(e.time, e.requestBodySize, e.responseBodySize, tm.dnsMs, tm.connectMs, tm.tlsMs,
          tm.requestEnd, tm.responseStart, ...failure, e.seq, e.exchangeId).changes);
        break;
      }
      case 'exchange.row':
        exch(e.request.exchangeId, this.rows.write(e));
        break;
      case 'body.write': {
        const data = e.chunks.length === 1 ? e.chunks[0] : Buffer.concat(e.chunks, e.stored);
        const blob = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        exch(e.exchangeId, s.body.run(e.exchangeId, e.side, e.size, e.truncated ? 1 : 0, e.seq, blob, e.exchangeId).changes);
        break;
      }
      case 'ws.opened':
      case 'ws.message':
      case 'ws.closed':
        exch(e.exchangeId, this.ws.apply(e));
        break;
      case 'h2.frame':
      case 'h2.push':
      case 'h2.summary': {
        const changed = this.h2.apply(e);
        if (changed.connId !== undefined) t.connIds.add(changed.connId);
        if (changed.exchangeId !== undefined) t.exchangeIds.add(changed.exchangeId);
        break;
      }
      case 'http.body':
        break; // gathered in memory by the sink, written as body.write
    }
  }
}
