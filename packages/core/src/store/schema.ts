// The capture file's schema and its migrations. The file is a public interface (docs/schema.md):
// migrations are additive, numbered, and recorded in PRAGMA user_version. A file from a newer
// hopscope is refused rather than half-understood.
import type Database from 'better-sqlite3';

/** Marks a SQLite file as a hopscope capture (PRAGMA application_id): ASCII "hops". */
export const APPLICATION_ID = 0x686f7073;

export interface Migration {
  version: number;
  sql: string;
}

const tlsLegColumns = (leg: 'client' | 'upstream') => `
  ${leg}_tls_sni TEXT,
  ${leg}_tls_alpn_offered TEXT,
  ${leg}_tls_alpn TEXT,
  ${leg}_tls_version TEXT,
  ${leg}_tls_cipher TEXT,
  ${leg}_tls_handshake_ms REAL,
  ${leg}_tls_certificates TEXT,
  ${leg}_tls_error_reason TEXT,
  ${leg}_tls_error_message TEXT,
  ${leg}_tls_error_code TEXT,`;

const V1 = `
CREATE TABLE connections (
  id INTEGER PRIMARY KEY,
  parent_id INTEGER,
  listener TEXT NOT NULL,
  client_address TEXT NOT NULL,
  client_port INTEGER NOT NULL,
  opened_at REAL NOT NULL,
  closed_at REAL,
  tunnel_host TEXT,
  tunnel_port INTEGER,
  tunnel_target TEXT,
  tunnel_headers TEXT,
  upstream_address TEXT,
  upstream_port INTEGER,
  dns_ms REAL,
  connect_ms REAL,
  detected_protocol TEXT,
  intercepted INTEGER,
  hello_sni TEXT,
  hello_alpn TEXT,
  hello_version INTEGER,
  hello_supported_versions TEXT,
  ${tlsLegColumns('client')}
  ${tlsLegColumns('upstream')}
  bytes_from_client INTEGER,
  bytes_from_server INTEGER,
  error_reason TEXT,
  error_message TEXT,
  error_code TEXT,
  last_seq INTEGER NOT NULL
);
CREATE INDEX connections_last_seq ON connections(last_seq);

CREATE TABLE exchanges (
  id INTEGER PRIMARY KEY,
  connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  stream_id INTEGER,
  protocol TEXT NOT NULL,
  method TEXT NOT NULL,
  target TEXT NOT NULL,
  url TEXT NOT NULL,
  scheme TEXT NOT NULL,
  host TEXT NOT NULL,
  port INTEGER NOT NULL,
  request_headers TEXT NOT NULL,
  request_trailers TEXT,
  status INTEGER,
  status_text TEXT,
  response_protocol TEXT,
  response_headers TEXT,
  response_trailers TEXT,
  response_content_type TEXT,
  remote_address TEXT,
  remote_port INTEGER,
  started_at REAL NOT NULL,
  request_end_at REAL,
  response_start_at REAL,
  completed_at REAL,
  dns_ms REAL,
  connect_ms REAL,
  tls_ms REAL,
  request_body_size INTEGER,
  response_body_size INTEGER,
  state TEXT NOT NULL CHECK (state IN ('pending', 'responded', 'complete', 'failed')),
  error_reason TEXT,
  error_message TEXT,
  error_code TEXT,
  last_seq INTEGER NOT NULL
);
CREATE INDEX exchanges_connection ON exchanges(connection_id);
CREATE INDEX exchanges_host ON exchanges(host);
CREATE INDEX exchanges_last_seq ON exchanges(last_seq);

CREATE TABLE bodies (
  exchange_id INTEGER NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
  side TEXT NOT NULL CHECK (side IN ('request', 'response')),
  size INTEGER NOT NULL,
  truncated INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (exchange_id, side)
);
CREATE INDEX bodies_seq ON bodies(seq);

CREATE TABLE decode_errors (
  id INTEGER PRIMARY KEY,
  connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  decoder TEXT NOT NULL,
  side TEXT NOT NULL CHECK (side IN ('client', 'server')),
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  occurred_at REAL NOT NULL,
  seq INTEGER NOT NULL
);
CREATE INDEX decode_errors_connection ON decode_errors(connection_id);
CREATE INDEX decode_errors_seq ON decode_errors(seq);
`;

// WebSockets, keyed by their handshake exchange: one row each, their messages and their frames.
const V2_WEBSOCKETS = `
CREATE TABLE websockets (
  exchange_id INTEGER PRIMARY KEY REFERENCES exchanges(id) ON DELETE CASCADE,
  connection_id INTEGER NOT NULL,
  opened_at REAL NOT NULL,
  closed_at REAL,
  subprotocol TEXT,
  extensions TEXT,
  deflate TEXT,
  closed_by TEXT CHECK (closed_by IN ('client', 'server')),
  close_code INTEGER,
  close_reason TEXT,
  clean INTEGER,
  messages_from_client INTEGER,
  messages_from_server INTEGER,
  bytes_from_client INTEGER,
  bytes_from_server INTEGER,
  error_reason TEXT,
  error_message TEXT,
  error_code TEXT,
  last_seq INTEGER NOT NULL
);
CREATE INDEX websockets_last_seq ON websockets(last_seq);

CREATE TABLE ws_messages (
  id INTEGER PRIMARY KEY,
  exchange_id INTEGER NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
  message_index INTEGER NOT NULL,
  side TEXT NOT NULL CHECK (side IN ('client', 'server')),
  opcode INTEGER NOT NULL,
  fin INTEGER NOT NULL,
  frames INTEGER NOT NULL,
  wire_size INTEGER NOT NULL,
  payload_size INTEGER NOT NULL,
  decoded_size INTEGER NOT NULL,
  compressed INTEGER NOT NULL,
  truncated INTEGER NOT NULL,
  utf8_valid INTEGER,
  close_code INTEGER,
  close_reason TEXT,
  sent_at REAL NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  UNIQUE (exchange_id, message_index)
);
CREATE INDEX ws_messages_seq ON ws_messages(seq);

CREATE TABLE ws_frames (
  id INTEGER PRIMARY KEY,
  exchange_id INTEGER NOT NULL REFERENCES exchanges(id) ON DELETE CASCADE,
  message_index INTEGER NOT NULL,
  frame_index INTEGER NOT NULL,
  side TEXT NOT NULL CHECK (side IN ('client', 'server')),
  fin INTEGER NOT NULL,
  rsv1 INTEGER NOT NULL,
  rsv2 INTEGER NOT NULL,
  rsv3 INTEGER NOT NULL,
  opcode INTEGER NOT NULL,
  masked INTEGER NOT NULL,
  mask_key TEXT,
  payload_length INTEGER NOT NULL,
  wire_size INTEGER NOT NULL,
  seen_at REAL NOT NULL,
  seq INTEGER NOT NULL
);
CREATE INDEX ws_frames_message ON ws_frames(exchange_id, message_index, frame_index);
CREATE INDEX ws_frames_seq ON ws_frames(seq);
`;

// HTTP/2: every frame per connection and side, bounded per connection. Past the cap a connection's
// frames are summarised: one row per (side, type) counting frames and payload bytes (stream_id NULL).
// A pushed exchange names the exchange of the stream its PUSH_PROMISE came on.
const V3_HTTP2 = `
CREATE TABLE h2_frames (
  id INTEGER PRIMARY KEY,
  connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
  side TEXT NOT NULL CHECK (side IN ('client', 'server')),
  stream_id INTEGER,
  type INTEGER NOT NULL,
  type_name TEXT NOT NULL,
  flags INTEGER NOT NULL,
  flag_names TEXT NOT NULL,
  length INTEGER NOT NULL,
  pad_length INTEGER,
  details TEXT,
  summary INTEGER NOT NULL DEFAULT 0,
  frame_count INTEGER NOT NULL DEFAULT 1,
  seen_at REAL NOT NULL,
  last_seen_at REAL,
  seq INTEGER NOT NULL
);
CREATE INDEX h2_frames_stream ON h2_frames(connection_id, stream_id, id);
CREATE UNIQUE INDEX h2_frames_summary ON h2_frames(connection_id, side, type) WHERE summary = 1;
CREATE INDEX h2_frames_seq ON h2_frames(seq);

ALTER TABLE exchanges ADD COLUMN pushed_by INTEGER;
`;

const V4_LISTENER_MODES = `
ALTER TABLE connections ADD COLUMN tunnel_via TEXT;
ALTER TABLE connections ADD COLUMN proxy_user TEXT;
ALTER TABLE exchanges ADD COLUMN upstream_url TEXT;
`;

/** In order; each one moves the file from `version - 1` to `version`. Never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: V1 },
  { version: 2, sql: V2_WEBSOCKETS },
  { version: 3, sql: V3_HTTP2 },
  { version: 4, sql: V4_LISTENER_MODES },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

export class CaptureFileError extends Error {
  override name = 'CaptureFileError';
}

export interface MigrationResult {
  from: number;
  to: number;
}

export function readUserVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Refuses files that belong to another application or to a newer hopscope. */
export function checkCompatible(db: Database.Database, name: string): number {
  const version = readUserVersion(db);
  const appId = db.pragma('application_id', { simple: true }) as number;
  if (appId !== 0 && appId !== APPLICATION_ID) {
    throw new CaptureFileError(`${name} is a SQLite database of another application (application_id ${appId})`);
  }
  if (version > SCHEMA_VERSION) {
    throw new CaptureFileError(
      `${name} has capture schema version ${version}, newer than this hopscope knows (${SCHEMA_VERSION}); upgrade hopscope to open it`,
    );
  }
  if (version === 0 && appId !== APPLICATION_ID) {
    const tables = db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'`).get() as { n: number };
    if (tables.n > 0) throw new CaptureFileError(`${name} is a SQLite database but not a hopscope capture file`);
  }
  return version;
}

/** Applies the missing migrations, each in its own transaction. Running it again is a no-op. */
export function migrate(db: Database.Database, name = 'capture file'): MigrationResult {
  const from = checkCompatible(db, name);
  for (const migration of MIGRATIONS) {
    if (migration.version <= readUserVersion(db)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
  return { from, to: readUserVersion(db) };
}
