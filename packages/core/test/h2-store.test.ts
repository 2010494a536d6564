// HTTP/2 capture through the SQLite sink and back out of the reading API: frames per connection
// and stream, the per-connection cap with summary rows, pushed exchanges, migration to version 3.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CaptureBus } from '../src/capture/bus.js';
import { IdAllocator } from '../src/capture/ids.js';
import type { Side } from '../src/capture/events.js';
import { H2Tap } from '../src/taps/h2-tap.js';
import { openStore } from '../src/store/open-store.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, migrate } from '../src/store/schema.js';
import { countH2Frames, getConnection, getExchange, listExchanges, listH2Frames } from '../src/store/queries.js';
import { SqliteSink, type SqliteSinkOptions } from '../src/store/sqlite-sink.js';
import {
  PREFACE,
  dataFrame,
  headersFrame,
  hpackIndexed,
  hpackLiteral,
  pushPromiseFrame,
  settingsFrame,
  windowUpdateFrame,
} from './helpers/h2-encode.js';

const opts = { timeout: 10_000 };
const dir = mkdtempSync(join(tmpdir(), 'hopscope-h2-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function setup(path = ':memory:', options: SqliteSinkOptions = {}) {
  const { db, lastIds } = openStore(path);
  const bus = new CaptureBus(lastIds.seq + 1);
  const errors: Error[] = [];
  const sink = new SqliteSink(db, bus, { onError: (err) => errors.push(err), ...options });
  bus.emit({ kind: 'conn.opened', connId: 4, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 50000 });
  const tap = new H2Tap({
    connId: 4,
    bus,
    ids: new IdAllocator(4, lastIds.exchangeId),
    scheme: 'https',
    host: 'site.test',
    port: 443,
    bodyCaptureLimit: 1024,
    protocol: 'h2',
  });
  const send = (side: Side, ...frames: Buffer[]) => tap.onData(side, Buffer.concat(frames));
  return { db, bus, sink, errors, tap, send };
}

const request = (path: string) => Buffer.concat([hpackIndexed(2), hpackIndexed(7), hpackLiteral('without', 4, path), hpackLiteral('without', 1, 'site.test')]);
const ok = hpackIndexed(8);

describe('HTTP/2 rows in the capture store', opts, () => {
  test('frames per connection and stream, with decoded details; a pushed exchange names its parent', opts, async () => {
    const { db, sink, errors, send, tap } = setup();
    send('client', PREFACE, settingsFrame([[2, 1]]), headersFrame(1, request('/page'), { endStream: true }));
    send('server', settingsFrame([[3, 100]]), pushPromiseFrame(1, 2, request('/app.js')), headersFrame(1, ok), dataFrame(1, 'html', { endStream: true }));
    send('server', headersFrame(2, ok), dataFrame(2, 'js', { endStream: true }));
    tap.onClose(null);
    await sink.flush();
    assert.deepEqual(errors, []);

    const all = listH2Frames(db, 4, { limit: 100 });
    assert.deepEqual(
      all.map((f) => `${f.side} ${f.typeName} ${f.streamId}`),
      ['client SETTINGS 0', 'client HEADERS 1', 'server SETTINGS 0', 'server PUSH_PROMISE 1', 'server HEADERS 1', 'server DATA 1', 'server HEADERS 2', 'server DATA 2'],
    );
    const headers = all[1];
    assert.deepEqual(headers.flagNames, ['END_STREAM', 'END_HEADERS']);
    assert.deepEqual(headers.details?.headerBlock?.fields.map((f) => [f.name, f.value, f.representation]), [
      [':method', 'GET', 'indexed'],
      [':scheme', 'https', 'indexed'],
      [':path', '/page', 'literal-without-indexing'],
      [':authority', 'site.test', 'literal-without-indexing'],
    ]);
    assert.deepEqual(all[0].details?.settings, [{ id: 2, name: 'ENABLE_PUSH', value: 1 }]);
    assert.equal(all[3].details?.promisedStreamId, 2);
    assert.deepEqual([all[5].length, all[5].details, all[5].summary, all[5].frameCount], [4, null, false, 1]);

    assert.deepEqual(listH2Frames(db, 4, { streamId: 2, limit: 10 }).map((f) => f.typeName), ['HEADERS', 'DATA']);
    assert.deepEqual(listH2Frames(db, 4, { streamId: 0, limit: 10 }).map((f) => f.side), ['client', 'server']);
    assert.deepEqual(listH2Frames(db, 4, { afterId: all[5].id, limit: 1 }).map((f) => f.id), [all[6].id]);
    assert.equal(countH2Frames(db, 4), 8);

    const [pushed, page] = listExchanges(db, { limit: 10 });
    assert.equal(pushed.streamId, 2);
    assert.equal(getExchange(db, pushed.id)?.pushedBy, page.id);
    assert.equal(getExchange(db, page.id)?.pushedBy, null);
    assert.deepEqual(getExchange(db, pushed.id)?.responseBody?.data.toString(), 'js');
    assert.deepEqual(getExchange(db, page.id)?.requestHeaders.map(([n]) => n), [':method', ':scheme', ':path', ':authority']);
    await sink.close();
  });

  test('past the cap, frames are summarised per side and type with count and bytes', opts, async () => {
    const { db, sink, errors, send } = setup(':memory:', { h2FrameCap: 4 });
    send('client', PREFACE, settingsFrame([]), headersFrame(1, Buffer.concat([hpackIndexed(3), hpackIndexed(7), hpackIndexed(4), hpackLiteral('without', 1, 'site.test')])));
    send('server', settingsFrame([]), headersFrame(1, ok));
    for (let i = 0; i < 10; i++) send('client', dataFrame(1, Buffer.alloc(100)));
    await sink.flush(); // the summary rows keep counting across batches
    for (let i = 0; i < 5; i++) send('client', dataFrame(1, Buffer.alloc(10)), windowUpdateFrame(0, 10));
    send('client', dataFrame(1, '', { endStream: true }), headersFrame(3, Buffer.concat([hpackIndexed(2), hpackIndexed(7), hpackIndexed(4), hpackLiteral('without', 1, 'site.test')]), { endStream: true }));
    send('server', dataFrame(1, 'done', { endStream: true }), headersFrame(3, ok), dataFrame(3, 'three', { endStream: true }));
    await sink.flush();
    assert.deepEqual(errors, []);

    const rows = listH2Frames(db, 4, { limit: 100 });
    assert.deepEqual(
      rows.map((f) => `${f.side} ${f.typeName} ${f.streamId} ${f.summary ? `summary ${f.frameCount}×, ${f.length} bytes` : f.length}`),
      [
        'client SETTINGS 0 0',
        'client HEADERS 1 14',
        'server SETTINGS 0 0',
        'server HEADERS 1 1',
        'client DATA null summary 16×, 1050 bytes',
        'client WINDOW_UPDATE null summary 5×, 20 bytes',
        'client HEADERS null summary 1×, 14 bytes',
        'server DATA null summary 2×, 9 bytes',
        'server HEADERS null summary 1×, 1 bytes',
      ],
    );
    const summary = rows[4];
    assert.ok(summary.lastSeenAt !== null && summary.lastSeenAt >= summary.seenAt);
    assert.equal(countH2Frames(db, 4), 4 + 16 + 5 + 1 + 2 + 1);
    assert.equal(countH2Frames(db, 4, 1), 2, 'a stream filter counts the stored frames only');
    assert.deepEqual(listH2Frames(db, 4, { streamId: 3, limit: 10 }), [], 'summary rows belong to no stream');
    const [third, first] = listExchanges(db, { limit: 2 });
    assert.deepEqual([first.state, first.requestBodySize, first.responseBodySize], ['complete', 1050, 4]);
    assert.deepEqual([third.state, third.streamId, third.responseBodySize], ['complete', 3, 5], 'exchanges do not depend on the cap');
    await sink.close();
  });

  test('through the writer worker (structured cloning), and reopened: frames and summaries are there', opts, async () => {
    const path = join(dir, 'worker.sqlite');
    const { db, sink, errors, send } = setup(path, { workerPath: path, h2FrameCap: 3 });
    send('client', PREFACE, settingsFrame([[1, 8192]]), headersFrame(1, request('/w'), { endStream: true }));
    send('server', settingsFrame([]), headersFrame(1, ok), dataFrame(1, 'a'), dataFrame(1, 'b'), dataFrame(1, 'c', { endStream: true }));
    await sink.close();
    db.close();
    assert.deepEqual(errors, []);
    const reopened = openStore(path, { readonly: true });
    const rows = listH2Frames(reopened.db, 4, { limit: 10 });
    assert.deepEqual(rows.map((f) => `${f.typeName}${f.summary ? ` ×${f.frameCount}` : ''}`), ['SETTINGS', 'HEADERS', 'SETTINGS', 'HEADERS ×1', 'DATA ×3']);
    assert.deepEqual(rows[0].details?.settings, [{ id: 1, name: 'HEADER_TABLE_SIZE', value: 8192 }]);
    assert.ok(reopened.lastIds.seq >= rows.at(-1)!.seq, 'h2_frames sequence numbers count for the next run');
    reopened.db.close();
  });

  test('a version 2 capture file is upgraded to the current schema: h2_frames added, exchanges gain pushed_by, tunnels their mode', opts, () => {
    const path = join(dir, 'v2.sqlite');
    const old = new Database(path);
    for (const m of MIGRATIONS.filter((m) => m.version <= 2)) old.exec(m.sql);
    old.pragma(`application_id = ${APPLICATION_ID}`);
    old.pragma('user_version = 2');
    old.exec(`INSERT INTO connections (id, listener, client_address, client_port, opened_at, last_seq) VALUES (1, 'proxy', '::1', 1, 0, 1)`);
    old.exec(`INSERT INTO exchanges (id, connection_id, protocol, method, target, url, scheme, host, port, request_headers, started_at, state, last_seq)
      VALUES (1, 1, 'HTTP/1.1', 'GET', '/', 'http://a/', 'http', 'a', 80, '[]', 0, 'pending', 2)`);
    assert.deepEqual(migrate(old), { from: 2, to: SCHEMA_VERSION });
    assert.equal(getExchange(old, 1)?.pushedBy, null);
    old.exec(`UPDATE connections SET tunnel_host = 'a', tunnel_port = 443, tunnel_target = 'a:443', tunnel_headers = '[]' WHERE id = 1`);
    assert.deepEqual(getConnection(old, 1)?.tunnel, { host: 'a', port: 443, target: 'a:443', headers: [], via: 'connect', user: null }, 'a tunnel from before v4 reads as a CONNECT');
    assert.deepEqual(listH2Frames(old, 1, { limit: 5 }), []);
    old.close();
  });
});
