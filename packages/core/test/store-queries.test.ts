import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CaptureBus } from '../src/capture/bus.js';
import { IdAllocator } from '../src/capture/ids.js';
import { openStore } from '../src/store/open-store.js';
import { countExchanges, getConnection, getExchange, iterateExchanges, listExchanges } from '../src/store/queries.js';
import { SCHEMA_VERSION, migrate } from '../src/store/schema.js';
import { SqliteSink } from '../src/store/sqlite-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'hopscope-queries-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tempFile = () => join(dir, `capture-${++fileNo}.sqlite`);

const noTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };

interface Spec {
  host: string;
  method: string;
  path: string;
  status: number | null;
  body?: string;
}

/** Captures one connection with the given exchanges through a real bus and sink, ids from `ids`. */
function capture(db: Database.Database, bus: CaptureBus, ids: IdAllocator, specs: Spec[]): number[] {
  const sink = new SqliteSink(db, bus, { onError: (err) => assert.fail(err) });
  const connId = ids.nextConnId();
  bus.emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 40000 });
  const exchangeIds = specs.map((spec) => {
    const exchangeId = ids.nextExchangeId();
    bus.emit({ kind: 'http.request', exchangeId, connId, streamId: null, protocol: 'HTTP/1.1', method: spec.method, target: spec.path,
      url: `http://${spec.host}${spec.path}`, scheme: 'http', host: spec.host, port: 80, headers: [['Host', spec.host]] });
    if (spec.status === null) {
      bus.emit({ kind: 'http.failed', exchangeId, requestBodySize: 0, responseBodySize: 0, timings: noTimings,
        error: { reason: 'timeout', message: 'upstream timed out' } });
      return exchangeId;
    }
    bus.emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: spec.status, statusText: 'X', headers: [] });
    const body = Buffer.from(spec.body ?? '');
    if (body.length) bus.emit({ kind: 'http.body', exchangeId, side: 'server', chunk: body });
    bus.emit({ kind: 'http.completed', exchangeId, requestBodySize: 0, responseBodySize: body.length, timings: noTimings });
    return exchangeId;
  });
  bus.emit({ kind: 'conn.closed', connId, bytesFromClient: 1, bytesFromServer: 2, error: null });
  sink.close();
  return exchangeIds;
}

function populated() {
  const { db } = openStore(':memory:');
  const specs: Spec[] = [];
  for (let i = 1; i <= 25; i++) {
    specs.push({
      host: i % 2 ? 'a.test' : 'b.test',
      method: i % 5 === 0 ? 'POST' : 'GET',
      path: i === 7 ? '/100%_done' : `/item/${i}`,
      status: i % 10 === 0 ? null : i % 3 === 0 ? 404 : 200,
      body: `body-${i}`,
    });
  }
  capture(db, new CaptureBus(), new IdAllocator(), specs);
  return db;
}

describe('capture store: opening and migrations', { timeout: 10_000 }, () => {
  test('a new file is in WAL mode at the current schema version, with zero last ids', () => {
    const path = tempFile();
    const { db, lastIds } = openStore(path);
    assert.deepEqual(lastIds, { connId: 0, exchangeId: 0, seq: 0 });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 1);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all();
    assert.deepEqual(tables, ['bodies', 'connections', 'decode_errors', 'exchanges', 'h2_frames', 'websockets', 'ws_frames', 'ws_messages']);
    db.close();
  });

  test('reopening a file continues ids and sequence numbers; migrating again is a no-op', () => {
    const path = tempFile();
    const first = openStore(path);
    const bus = new CaptureBus(first.lastIds.seq + 1);
    capture(first.db, bus, new IdAllocator(), [
      { host: 'a.test', method: 'GET', path: '/', status: 200, body: 'x' },
      { host: 'a.test', method: 'GET', path: '/2', status: 500 },
    ]);
    first.db.close();

    const second = openStore(path);
    // conn.opened + 2 × (request, response, completed) + body + conn.closed = 9 events.
    assert.deepEqual(second.lastIds, { connId: 1, exchangeId: 2, seq: 9 });
    const schemaBefore = second.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').pluck().all();
    assert.deepEqual(migrate(second.db), { from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    assert.deepEqual(second.db.prepare('SELECT sql FROM sqlite_master ORDER BY name').pluck().all(), schemaBefore);

    const ids = new IdAllocator(second.lastIds.connId, second.lastIds.exchangeId);
    const bus2 = new CaptureBus(second.lastIds.seq + 1);
    const [next] = capture(second.db, bus2, ids, [{ host: 'a.test', method: 'GET', path: '/3', status: 204 }]);
    assert.equal(next, 3);
    assert.equal(getExchange(second.db, 3)?.connectionId, 2);
    assert.equal(getExchange(second.db, 3)?.lastSeq, 13);
    second.db.close();
    const reader = openStore(path, { readonly: true });
    assert.deepEqual(reader.lastIds, { connId: 2, exchangeId: 3, seq: 14 });
    reader.db.close();
  });

  test('refuses a file from a newer hopscope, a non-SQLite file and a foreign database', () => {
    const newer = tempFile();
    openStore(newer).db.close();
    const raw = new Database(newer);
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(() => openStore(newer), new RegExp(`schema version 99, newer than this hopscope knows \\(${SCHEMA_VERSION}\\)`));
    assert.throws(() => openStore(newer, { readonly: true }), /newer/);

    const text = tempFile();
    writeFileSync(text, 'this is a text file, not a database, and it is long enough to have a header'.repeat(20));
    assert.throws(() => openStore(text), /is not a SQLite database/);

    const foreign = tempFile();
    const other = new Database(foreign);
    other.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    other.close();
    assert.throws(() => openStore(foreign), /not a hopscope capture file/);

    assert.throws(() => openStore(join(dir, 'missing.sqlite'), { readonly: true }), /cannot open capture file/);
    assert.throws(() => openStore(':memory:', { readonly: true }), /in-memory/);
  });
});

describe('capture store: reading API', { timeout: 10_000 }, () => {
  const db = populated();
  after(() => db.close());

  test('pages newest first with beforeId and oldest first with afterId', () => {
    const first = listExchanges(db, { limit: 10 });
    assert.deepEqual(first.map((e) => e.id), [25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
    const second = listExchanges(db, { limit: 10, beforeId: first[first.length - 1].id });
    assert.deepEqual(second.map((e) => e.id), [15, 14, 13, 12, 11, 10, 9, 8, 7, 6]);
    const oldest = listExchanges(db, { limit: 3, order: 'oldest', afterId: 22 });
    assert.deepEqual(oldest.map((e) => e.id), [23, 24, 25]);
    assert.deepEqual(listExchanges(db, { limit: 5, afterId: 25 }), []);
  });

  test('filters by host, method, status (exact and range) and URL search', () => {
    const ids = (filter: Parameters<typeof listExchanges>[1]) => listExchanges(db, filter).map((e) => e.id);
    assert.deepEqual(ids({ limit: 100, host: 'b.test', method: 'POST', order: 'oldest' }), [10, 20]);
    assert.deepEqual(ids({ limit: 100, status: 404, host: 'a.test', order: 'oldest' }), [3, 9, 15, 21]);
    assert.deepEqual(ids({ limit: 100, status: { min: 400, max: 599 } }).length, 8);
    assert.deepEqual(ids({ limit: 100, search: '%_' }), [7], 'LIKE wildcards in the search are literal');
    assert.deepEqual(ids({ limit: 100, search: 'ITEM/2', order: 'oldest' }), [2, 20, 21, 22, 23, 24, 25]);
    assert.equal(countExchanges(db), 25);
    assert.equal(countExchanges(db, { host: 'a.test' }), 13);
    assert.equal(countExchanges(db, { status: 200 }), 15);

    const failed = listExchanges(db, { limit: 1, beforeId: 11 })[0];
    assert.deepEqual(
      { id: failed.id, state: failed.state, status: failed.status, errorReason: failed.errorReason },
      { id: 10, state: 'failed', status: null, errorReason: 'timeout' },
    );
  });

  test('getExchange and getConnection return null for unknown ids', () => {
    assert.equal(getExchange(db, 999), null);
    assert.equal(getConnection(db, 999), null);
    const conn = getConnection(db, 1);
    assert.equal(conn?.tls.client, null);
    assert.equal(conn?.tunnel, null);
    assert.deepEqual(conn?.decodeErrors, []);
  });

  test('iterateExchanges streams details with bodies, and the database is usable after an early stop', () => {
    const all = [...iterateExchanges(db)];
    assert.equal(all.length, 25);
    assert.deepEqual(all.slice(0, 3).map((e) => e.id), [1, 2, 3]);
    assert.equal(all[4].responseBody?.data.toString(), 'body-5');
    assert.equal(all[9].responseBody, null);
    assert.deepEqual(all[0].requestHeaders, [['Host', 'a.test']]);

    const posts = [...iterateExchanges(db, { method: 'POST', order: 'newest', limit: 2 })].map((e) => e.id);
    assert.deepEqual(posts, [25, 20]);

    for (const detail of iterateExchanges(db, { host: 'b.test' })) {
      assert.equal(detail.id, 2);
      break;
    }
    assert.equal(countExchanges(db, { host: 'b.test' }), 12);

    const viaSql = db
      .prepare(`SELECT e.id, CAST(b.data AS TEXT) AS text FROM exchanges e JOIN bodies b ON b.exchange_id = e.id
        AND b.side = 'response' WHERE e.host = ? ORDER BY e.id LIMIT 2`)
      .all('a.test');
    assert.deepEqual(viaSql, [{ id: 1, text: 'body-1' }, { id: 3, text: 'body-3' }]);
  });
});
