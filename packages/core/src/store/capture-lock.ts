// One hopscope writing a capture file at a time. The lock is `<capture>.lock`, a tiny SQLite file
// whose RESERVED lock the owner holds for as long as it runs: the kernel drops it when the process
// dies (kill -9 included), so a stale lock can never block the next start, and a second opener,
// in another process or the same one, is refused at once. The owner's pid is committed in it first,
// readable while the lock is held, so the refusal can name the process.
// Not `locking_mode=EXCLUSIVE` on the capture itself: that would shut out the inspector's readers.
import { existsSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { CaptureFileError } from './schema.js';

export interface CaptureLock {
  /** The lock file next to the capture. */
  readonly path: string;
  /** Lets the next hopscope in. Idempotent. */
  release(): void;
}

interface Owner {
  pid: number;
  host: string;
  started_at: number;
}

/** Takes the capture file's lock, or throws a CaptureFileError naming the process that has it. */
export function acquireCaptureLock(capturePath: string): CaptureLock {
  // Through a symlink or by its own name, one capture file has one lock.
  const path = `${existsSync(capturePath) ? realpathSync(capturePath) : capturePath}.lock`;
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 }); // a held lock is an answer, not something to wait for
  } catch (err) {
    throw new CaptureFileError(`cannot create the lock file ${path} for ${capturePath}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma('journal_mode = DELETE'); // no WAL: its shared memory would be one more file to leave behind
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, host TEXT NOT NULL, started_at INTEGER NOT NULL)');
    // Take the lock, publish who holds it, and take it again: a racer that slipped in between owns the file instead.
    db.exec('BEGIN IMMEDIATE');
    db.prepare('DELETE FROM owner').run();
    db.prepare('INSERT INTO owner (pid, host, started_at) VALUES (?, ?, ?)').run(process.pid, hostname(), Date.now());
    db.pragma('busy_timeout = 2000'); // the commit waits out a refused opener reading the owner row
    db.exec('COMMIT');
    db.pragma('busy_timeout = 0');
    db.exec('BEGIN IMMEDIATE');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK'); // never describe ourselves from our own unfinished row
    const refusal =
      (err as { code?: string }).code?.startsWith('SQLITE_BUSY')
        ? new CaptureFileError(`${capturePath} is being recorded by ${describeOwner(db)}: stop it first, or record into another file (--db FILE)`, {
            cause: err,
          })
        : err;
    db.close();
    throw refusal;
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      db.close(); // rolls the open transaction back and drops the lock
    },
  };
}

function describeOwner(db: Database.Database): string {
  let owner: Owner | undefined;
  try {
    owner = db.prepare('SELECT pid, host, started_at FROM owner').get() as Owner | undefined;
  } catch {
    owner = undefined; // the owner may still be writing its row
  }
  if (!owner) return 'another hopscope';
  const where = owner.host === hostname() ? '' : ` on ${owner.host}`;
  const self = owner.pid === process.pid && where === '' ? ', this very process' : '';
  return `another hopscope (pid ${owner.pid}${where}${self}, since ${new Date(owner.started_at).toISOString()})`;
}
