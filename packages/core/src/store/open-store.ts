// Opens (or creates) a capture file: WAL, migrations, and the highest ids already in it so that a
// new run continues the numbering (IdAllocator and CaptureBus are seeded from `lastIds`).
import Database from 'better-sqlite3';
import { CaptureFileError, SCHEMA_VERSION, checkCompatible, migrate } from './schema.js';
import { acquireCaptureLock, type CaptureLock } from './capture-lock.js';
import { registerFilterFunctions } from './decoded-body.js';

export interface OpenStoreOptions {
  /** Open an existing file for reading only: no migrations, no writes. */
  readonly?: boolean;
  /** Refuse the file while another hopscope records into it, and keep others out until `release()`. */
  exclusive?: boolean;
}

export interface LastIds {
  connId: number;
  exchangeId: number;
  /** Highest event sequence number recorded in any table (0 for a new file). */
  seq: number;
}

export interface Store {
  db: Database.Database;
  lastIds: LastIds;
  /** Drops the `exclusive` lock (a no-op without one); call it after closing `db`. */
  release(): void;
}

export function openStore(path: string, options: OpenStoreOptions = {}): Store {
  const readonly = options.readonly === true;
  if (readonly && path === ':memory:') throw new CaptureFileError('an in-memory capture cannot be opened read-only');
  const lock: CaptureLock | null = options.exclusive && !readonly && path !== ':memory:' ? acquireCaptureLock(path) : null;
  const release = () => lock?.release();
  let db: Database.Database;
  try {
    db = new Database(path, readonly ? { readonly: true, fileMustExist: true } : {});
  } catch (err) {
    release();
    throw new CaptureFileError(`cannot open capture file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The first read of the header is where a non-SQLite file shows itself.
    try {
      db.pragma('user_version', { simple: true });
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_NOTADB') {
        throw new CaptureFileError(`${path} is not a SQLite database (expected a hopscope capture file)`, { cause: err });
      }
      throw err;
    }
    if (readonly) {
      const version = checkCompatible(db, path);
      if (version < SCHEMA_VERSION) {
        throw new CaptureFileError(
          `${path} has capture schema version ${version}; open it once without readonly to upgrade it to ${SCHEMA_VERSION}`,
        );
      }
    } else {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db, path);
    }
    registerFilterFunctions(db); // the filter's SQL (body: decodes content codings)
    return { db, lastIds: readLastIds(db), release };
  } catch (err) {
    db.close();
    release();
    throw err;
  }
}

export function readLastIds(db: Database.Database): LastIds {
  const row = db
    .prepare(
      `SELECT
         (SELECT coalesce(max(id), 0) FROM connections) AS connId,
         (SELECT coalesce(max(id), 0) FROM exchanges) AS exchangeId,
         max(
           (SELECT coalesce(max(last_seq), 0) FROM connections),
           (SELECT coalesce(max(last_seq), 0) FROM exchanges),
           (SELECT coalesce(max(seq), 0) FROM bodies),
           (SELECT coalesce(max(seq), 0) FROM decode_errors),
           (SELECT coalesce(max(last_seq), 0) FROM websockets),
           (SELECT coalesce(max(seq), 0) FROM ws_messages),
           (SELECT coalesce(max(seq), 0) FROM ws_frames),
           (SELECT coalesce(max(seq), 0) FROM h2_frames)
         ) AS seq`,
    )
    .get() as LastIds;
  return { connId: row.connId, exchangeId: row.exchangeId, seq: row.seq };
}
