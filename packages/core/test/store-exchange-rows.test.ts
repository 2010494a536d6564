// An exchange written in one batch (folded into one INSERT) and the same exchange written one
// event per batch (statement per event) must give the same row.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CaptureBus } from '../src/capture/bus.js';
import type { NewCaptureEvent } from '../src/capture/events.js';
import { openStore } from '../src/store/open-store.js';
import { SqliteSink } from '../src/store/sqlite-sink.js';

const exchangeEvents = (failed: boolean): NewCaptureEvent[] => [
  { kind: 'conn.opened', connId: 1, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 5000, time: 1 },
  { kind: 'http.request', exchangeId: 7, connId: 1, streamId: 3, protocol: 'h2', method: 'POST', target: '/a', url: 'https://x.test/a',
    scheme: 'https', host: 'x.test', port: 443, headers: [[':method', 'POST'], ['content-type', 'a/b']], time: 2 },
  { kind: 'http.trailers', exchangeId: 7, side: 'client', headers: [['x-req', '1']], time: 3 },
  { kind: 'http.response', exchangeId: 7, protocol: 'h2', status: 201, statusText: '', headers: [[':status', '201'], ['Content-Type', 'text/x']],
    remoteAddress: '127.0.0.1', remotePort: 443, time: 4 },
  { kind: 'http.trailers', exchangeId: 7, side: 'server', headers: [['grpc-status', '0']], time: 5 },
  failed
    ? { kind: 'http.failed', exchangeId: 7, requestBodySize: 3, responseBodySize: 9, time: 6,
        timings: { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: 2.5, responseStart: null },
        error: { reason: 'reset', message: 'RST_STREAM', code: 'CANCEL' } }
    : { kind: 'http.completed', exchangeId: 7, requestBodySize: 3, responseBodySize: 9, time: 6,
        timings: { dnsMs: 0.5, connectMs: 1, tlsMs: 2, requestEnd: 2.5, responseStart: 3.9 } },
];

async function rowAfter(events: NewCaptureEvent[], flushEach: boolean, upTo = events.length): Promise<Record<string, unknown>> {
  const { db } = openStore(':memory:');
  const bus = new CaptureBus();
  const sink = new SqliteSink(db, bus);
  for (const event of events.slice(0, upTo)) {
    bus.emit(event);
    if (flushEach) await sink.flush();
  }
  await sink.close();
  const row = db.prepare('SELECT * FROM exchanges WHERE id = 7').get() as Record<string, unknown>;
  db.close();
  return row;
}

describe('exchange rows folded into one INSERT', { timeout: 10_000 }, () => {
  for (const failed of [false, true]) {
    test(`a ${failed ? 'failed' : 'completed'} exchange: one batch and one batch per event give the same row`, async () => {
      const events = exchangeEvents(failed);
      const folded = await rowAfter(events, false);
      const stepwise = await rowAfter(events, true);
      assert.deepEqual(folded, stepwise);
      assert.equal(folded.state, failed ? 'failed' : 'complete');
      assert.equal(folded.request_trailers, '[["x-req","1"]]');
      assert.equal(folded.response_content_type, 'text/x');
    });
  }

  for (let upTo = 2; upTo < 6; upTo++) {
    test(`an exchange cut after ${upTo} events: the partial row is the same both ways`, async () => {
      const events = exchangeEvents(false);
      assert.deepEqual(await rowAfter(events, false, upTo), await rowAfter(events, true, upTo));
    });
  }
});
