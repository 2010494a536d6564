import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExchangeRow } from '../../core/src/inspector/protocol.js';
import { ExchangeStore } from '../src/store/exchange-store.js';
import { comparator, type SortSpec } from '../src/store/sort.js';

function row(id: number, patch: Partial<ExchangeRow> = {}): ExchangeRow {
  return {
    id, connectionId: 1, streamId: null, protocol: 'HTTP/1.1', method: 'GET', url: `http://a.test/p${id}`, host: 'a.test',
    status: null, statusText: null, responseContentType: null, state: 'pending', startedAt: 1000 + id, completedAt: null,
    requestBodySize: null, responseBodySize: null, errorReason: null, lastSeq: id * 10, target: `/p${id}`, scheme: 'http',
    port: 80, responseProtocol: null, responseStartAt: null, websocket: false, clientAlpn: null, upstreamAlpn: null, tlsError: false,
    ...patch,
  };
}

const ids = (s: ExchangeStore) => [...s.order];

describe('exchange store', { timeout: 10_000 }, () => {
  test('a snapshot replaces, events upsert and remove, one notification per flush', () => {
    const s = new ExchangeStore();
    let notified = 0;
    s.subscribe(() => notified++);
    s.enqueue({ kind: 'reset', seq: 50, rows: [row(3), row(1), row(2)] });
    s.enqueue({ kind: 'upsert', seq: 60, rows: [row(4), row(2, { status: 200, lastSeq: 55 })], removed: [1] });
    assert.equal(notified, 0, 'nothing happens before the flush');
    assert.equal(s.flush(), true);
    assert.equal(notified, 1);
    assert.deepEqual(ids(s), [2, 3, 4]);
    assert.equal(s.byId.get(2)!.status, 200);
    assert.equal(s.seq, 60);
    s.enqueue({ kind: 'reset', seq: 70, rows: [row(9)] });
    s.flush();
    assert.deepEqual(ids(s), [9]);
    assert.equal(s.flush(), false, 'an empty flush changes nothing');
  });

  test('an update older than the row held is dropped; an equal one is taken', () => {
    const s = new ExchangeStore();
    s.enqueue({ kind: 'upsert', rows: [row(1, { state: 'complete', lastSeq: 40 })] });
    s.enqueue({ kind: 'upsert', rows: [row(1, { state: 'pending', lastSeq: 30 })] });
    s.flush();
    assert.equal(s.byId.get(1)!.state, 'complete');
    s.enqueue({ kind: 'upsert', rows: [row(1, { state: 'complete', lastSeq: 40, clientAlpn: 'h2' })] });
    s.flush();
    assert.equal(s.byId.get(1)!.clientAlpn, 'h2');
  });

  test('clear hides every row held and later updates to them', () => {
    const s = new ExchangeStore();
    s.enqueue({ kind: 'upsert', rows: [row(1), row(2)] });
    s.flush();
    s.clear();
    assert.equal(s.size, 0);
    assert.equal(s.clearedThrough, 2);
    s.enqueue({ kind: 'upsert', rows: [row(2, { lastSeq: 99, status: 200 }), row(3)] });
    s.flush();
    assert.deepEqual(ids(s), [3]);
  });

  test('incremental ordering equals a full sort under random updates, for every sort', () => {
    const sorts: SortSpec[] = [
      { key: 'id', dir: 'asc' }, { key: 'id', dir: 'desc' }, { key: 'status', dir: 'asc' }, { key: 'status', dir: 'desc' },
      { key: 'duration', dir: 'desc' }, { key: 'host', dir: 'asc' }, { key: 'size', dir: 'asc' }, { key: 'method', dir: 'desc' },
    ];
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (const sort of sorts) {
      const s = new ExchangeStore();
      s.setSort(sort);
      let seq = 1;
      for (let round = 0; round < 120; round++) {
        const rows: ExchangeRow[] = [];
        for (let k = rand(6); k >= 0; k--) {
          const id = 1 + rand(60);
          rows.push(row(id, {
            lastSeq: ++seq, status: rand(3) ? [200, 404, 500, 301][rand(4)] : null, host: ['b.test', 'a.test', 'c.test'][rand(3)],
            method: rand(2) ? 'GET' : 'POST', completedAt: rand(2) ? 1000 + id + rand(500) : null, responseBodySize: rand(2) ? rand(5000) : null,
          }));
        }
        const removed = rand(4) === 0 ? [1 + rand(60)] : [];
        s.enqueue({ kind: 'upsert', rows, removed });
        s.flush();
        const cmp = comparator(sort);
        const expected = [...s.byId.values()].sort(cmp).map((r) => r.id);
        assert.deepEqual(ids(s), expected, `${sort.key} ${sort.dir}, round ${round}`);
        assert.equal(new Set(s.order).size, s.order.length, 'no duplicates');
      }
    }
  });

  test('100,000 rows: a snapshot and then live appends stay fast', () => {
    const s = new ExchangeStore();
    const rows = Array.from({ length: 100_000 }, (_, i) => row(i + 1));
    let t = performance.now();
    s.enqueue({ kind: 'reset', seq: 1, rows });
    s.flush();
    const bulkMs = performance.now() - t;
    assert.equal(s.size, 100_000);
    t = performance.now();
    for (let frame = 0; frame < 60; frame++) {
      const base = 100_000 + frame * 20;
      s.enqueue({ kind: 'upsert', rows: Array.from({ length: 20 }, (_, i) => row(base + i + 1)) });
      s.enqueue({ kind: 'upsert', rows: [row(50_000 + frame, { status: 200, state: 'complete', lastSeq: 10 ** 9 })] });
      s.flush();
    }
    const liveMs = (performance.now() - t) / 60;
    assert.equal(s.size, 101_200);
    assert.equal(s.order[s.order.length - 1], 101_200);
    // Generous bounds for slow CI machines; typical figures are far lower.
    assert.ok(bulkMs < 3000, `bulk ${bulkMs.toFixed(0)} ms`);
    assert.ok(liveMs < 50, `per frame ${liveMs.toFixed(2)} ms`);
  });
});
