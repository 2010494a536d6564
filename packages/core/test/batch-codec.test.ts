// The flat encoding a batch takes to the writer thread gives back exactly the items it was given,
// through a real postMessage to a real worker thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import type { CaptureEvent } from '../src/capture/events.js';
import type { BodyWrite, QueueItem } from '../src/store/batch-writer.js';
import { decodeBatch, encodeBatch, type EncodedBatch } from '../src/store/batch-codec.js';

const timings = { dnsMs: 1.5, connectMs: 2, tlsMs: null, requestEnd: 1700000000001.25, responseStart: null };
const body = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));

const items: QueueItem[] = [
  {
    kind: 'http.request', seq: 1, time: 1700000000000.5, exchangeId: 7, connId: 3, streamId: null, protocol: 'HTTP/1.1', method: 'POST',
    target: 'http://a.test/x?y=1', url: 'http://a.test/x?y=1', scheme: 'http', host: 'a.test', port: 80,
    headers: [['Host', 'a.test'], ['X-Dup', '1'], ['x-dup', 'é ünïcode']],
  },
  {
    kind: 'http.request', seq: 2, time: 2, exchangeId: 8, connId: 3, streamId: 5, protocol: 'h2', method: 'GET', target: '/',
    url: 'https://r.test/', scheme: 'https', host: 'r.test', port: 443, headers: [], upstreamUrl: 'http://127.0.0.1:9000/',
  },
  { kind: 'http.response', seq: 3, time: 3, exchangeId: 7, protocol: 'HTTP/1.1', status: 200, statusText: 'OK', headers: [['A', 'b']] },
  {
    kind: 'http.response', seq: 4, time: 4, exchangeId: 8, protocol: 'h2', status: 204, statusText: '', headers: [[':status', '204']],
    remoteAddress: '::1', remotePort: 9000,
  },
  { kind: 'http.trailers', seq: 5, time: 5, exchangeId: 8, side: 'server', headers: [['grpc-status', '0']] },
  { kind: 'http.completed', seq: 6, time: 6, exchangeId: 7, requestBodySize: 5, responseBodySize: 0, timings },
  {
    kind: 'http.failed', seq: 7, time: 7, exchangeId: 8, requestBodySize: 0, responseBodySize: 3, timings,
    error: { reason: 'reset', message: 'socket hang up', code: 'ECONNRESET' },
  },
  { kind: 'http.failed', seq: 8, time: 8, exchangeId: 9, requestBodySize: 0, responseBodySize: 0, timings, error: { reason: 'aborted', message: 'gone' } },
  { kind: 'body.write', seq: 9, exchangeId: 7, side: 'request', chunks: [body('he'), body('llo')], stored: 5, size: 12, truncated: true },
  { kind: 'body.write', seq: 10, exchangeId: 8, side: 'response', chunks: [], stored: 0, size: 0, truncated: false },
  {
    kind: 'ws.message', seq: 11, time: 11, exchangeId: 10, connId: 4, side: 'client', messageIndex: 0, opcode: 1, fin: true, frames: 2,
    wireSize: 20, payloadSize: 8, decodedSize: 8, compressed: false, payload: body('hi there'), truncated: false, utf8Valid: true,
    closeCode: null, closeReason: null,
    frameHeaders: [
      { time: 10, fin: false, rsv1: false, rsv2: false, rsv3: false, opcode: 1, masked: true, maskKey: '0a0b0c0d', payloadLength: 3, wireSize: 9 },
      { time: 11, fin: true, rsv1: true, rsv2: false, rsv3: true, opcode: 0, masked: true, maskKey: 'ffffffff', payloadLength: 5, wireSize: 11 },
    ],
  },
  {
    kind: 'ws.message', seq: 12, time: 12, exchangeId: 10, connId: 4, side: 'server', messageIndex: 1, opcode: 8, fin: true, frames: 1,
    wireSize: 6, payloadSize: 4, decodedSize: 4, compressed: false, payload: body('\x03\xe8ok'), truncated: false, utf8Valid: null,
    closeCode: 1000, closeReason: 'ok', frameHeaders: [],
  },
  { kind: 'conn.opened', seq: 13, time: 13, connId: 5, parentId: 3, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 5 },
  {
    kind: 'h2.summary', connId: 3, side: 'client', type: 0, typeName: 'DATA', frames: 4, bytes: 100, firstAt: 1, lastAt: 2, seq: 14,
  },
];

/** What a body or payload holds, whatever its chunking and its Uint8Array subclass. */
function normalize(item: QueueItem): unknown {
  if (item.kind === 'body.write') return { ...item, chunks: [Buffer.concat((item as BodyWrite).chunks).toString('latin1')] };
  if (item.kind === 'ws.message') return { ...item, payload: Buffer.from((item as CaptureEvent & { payload: Uint8Array }).payload).toString('latin1') };
  return item;
}

async function throughAPort(encoded: EncodedBatch): Promise<EncodedBatch> {
  const { port1, port2 } = new MessageChannel();
  try {
    const received = new Promise<EncodedBatch>((resolve) => port2.once('message', resolve));
    port1.postMessage(encoded, [encoded.bytes]);
    return await received;
  } finally {
    port1.close();
    port2.close();
  }
}

test('every item comes back equal, in order, after a real postMessage', async () => {
  const encoded = encodeBatch(items);
  assert.equal(encoded.bytes.byteLength, 5 + 8 + 4, 'bodies and payloads share one buffer');
  const decoded = decodeBatch(await throughAPort(encoded));
  assert.deepEqual(decoded.map(normalize), items.map(normalize));
  assert.equal(encoded.bytes.byteLength, 0, 'the buffer was moved, not copied');
});

test('optional fields stay absent when they were absent', () => {
  const decoded = decodeBatch(encodeBatch(items));
  assert.ok(!('upstreamUrl' in decoded[0]));
  assert.ok(!('remoteAddress' in decoded[2]) && !('remotePort' in decoded[2]));
  assert.ok(!('code' in (decoded[7] as { error: object }).error));
});

test('bodies and payloads come back as Buffers that SQLite can bind', () => {
  const decoded = decodeBatch(encodeBatch(items));
  assert.ok(Buffer.isBuffer((decoded[8] as BodyWrite).chunks[0]));
  assert.ok(Buffer.isBuffer((decoded[10] as { payload: Uint8Array }).payload));
});

test('an empty batch and a batch of objects only', () => {
  assert.deepEqual(decodeBatch(encodeBatch([])), []);
  const objects = items.slice(-2);
  assert.deepEqual(decodeBatch(encodeBatch(objects)), objects);
});

test('a corrupt batch is an error, not a silent loss', () => {
  assert.throws(() => decodeBatch({ values: [99], bytes: new ArrayBuffer(0), objects: [] }), /unknown item code 99/);
});
