// WebSocket capture events through the SQLite sink and back out of the reading API.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureBus } from '../src/capture/bus.js';
import type { NewCaptureEvent, Side, WsFrameHeader } from '../src/capture/events.js';
import Database from 'better-sqlite3';
import { openStore } from '../src/store/open-store.js';
import { APPLICATION_ID, MIGRATIONS } from '../src/store/schema.js';
import { countWsMessages, getWebSocket, getWsMessage, listWsFrames, listWsMessages } from '../src/store/queries.js';
import { SqliteSink, type CommittedInfo, type SqliteSinkOptions } from '../src/store/sqlite-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'hopscope-ws-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function setup(path = ':memory:', options: SqliteSinkOptions = {}) {
  const { db, lastIds } = openStore(path);
  const bus = new CaptureBus(lastIds.seq + 1);
  const errors: Error[] = [];
  const sink = new SqliteSink(db, bus, { onError: (err) => errors.push(err), ...options });
  const commits: CommittedInfo[] = [];
  sink.onCommitted((info) => commits.push(info));
  const emit = (e: NewCaptureEvent) => bus.emit(e);
  return { db, bus, sink, errors, commits, emit, lastIds };
}

function handshake(emit: (e: NewCaptureEvent) => void, exchangeId: number, connId: number) {
  emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 50000 });
  emit({
    kind: 'http.request', exchangeId, connId, streamId: null, protocol: 'HTTP/1.1', method: 'GET', target: '/chat',
    url: 'http://ws.test/chat', scheme: 'http', host: 'ws.test', port: 80, headers: [['Upgrade', 'websocket']],
  });
  emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: 101, statusText: 'Switching Protocols', headers: [['Upgrade', 'websocket']] });
  emit({
    kind: 'ws.opened', exchangeId, connId, subprotocol: 'chat', extensions: 'permessage-deflate; client_max_window_bits=10',
    deflate: { client: { noContextTakeover: false, maxWindowBits: 10 }, server: { noContextTakeover: false, maxWindowBits: 15 } },
  });
}

function frame(side: Side, frameIndex: number, fin: boolean, opcode: number, length: number): WsFrameHeader {
  const masked = side === 'client';
  return {
    time: 1_700_000_000_000, fin, rsv1: frameIndex === 0 && opcode === 1, rsv2: false, rsv3: false, opcode, masked,
    maskKey: masked ? '0a0b0c0d' : null, payloadLength: length, wireSize: length + (masked ? 6 : 2),
  };
}

function message(exchangeId: number, side: Side, messageIndex: number, payload: Buffer, extra: Partial<Extract<NewCaptureEvent, { kind: 'ws.message' }>> = {}): NewCaptureEvent {
  return {
    kind: 'ws.message', exchangeId, connId: 1, side, messageIndex, opcode: 1, fin: true, frames: 1, wireSize: payload.length + 6,
    payloadSize: payload.length, decodedSize: payload.length, compressed: false, payload, truncated: false, utf8Valid: true,
    closeCode: null, closeReason: null, time: 1_700_000_000_000 + messageIndex,
    frameHeaders: [frame(side, 0, true, extra.opcode ?? 1, payload.length)], ...extra,
  };
}

describe('WebSocket rows in the capture store', { timeout: 10_000 }, () => {
  test('a WebSocket, its messages in order with payloads, its frames, and how it closed', () => {
    const { db, sink, emit, commits, errors } = setup();
    handshake(emit, 5, 1);
    emit(message(5, 'server', 1, Buffer.alloc(0), { opcode: 9, utf8Valid: null }));
    const fragments = [frame('client', 0, false, 1, 3), frame('client', 1, true, 0, 4)];
    emit(message(5, 'client', 0, Buffer.from('hello!!'), { frames: 2, compressed: true, payloadSize: 7, decodedSize: 7, frameHeaders: fragments }));
    emit(message(5, 'server', 2, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65]), { opcode: 8, closeCode: 1000, closeReason: 'bye' }));
    emit({
      kind: 'ws.closed', exchangeId: 5, connId: 1, closedBy: 'server', closeCode: 1000, closeReason: 'bye', clean: false,
      error: { reason: 'closed', message: 'the client closed the connection without a close frame' },
      messagesFromClient: 1, messagesFromServer: 2, bytesFromClient: 20, bytesFromServer: 9,
    });
    sink.flush();
    assert.deepEqual(errors, []);
    assert.ok(commits.some((c) => c.exchangeIds.includes(5)), 'the handshake exchange is announced as changed');

    const ws = getWebSocket(db, 5)!;
    assert.equal(ws.subprotocol, 'chat');
    assert.equal(ws.extensions, 'permessage-deflate; client_max_window_bits=10');
    assert.equal(ws.deflate?.client.maxWindowBits, 10);
    assert.equal(ws.closedBy, 'server');
    assert.equal(ws.closeCode, 1000);
    assert.equal(ws.clean, false);
    assert.deepEqual(ws.error, { reason: 'closed', message: 'the client closed the connection without a close frame' });
    assert.deepEqual([ws.messagesFromClient, ws.messagesFromServer, ws.bytesFromClient, ws.bytesFromServer], [1, 2, 20, 9]);
    assert.ok(ws.closedAt !== null && ws.closedAt >= ws.openedAt);

    const messages = listWsMessages(db, 5, { limit: 10 });
    assert.deepEqual(messages.map((m) => [m.messageIndex, m.side, m.opcode]), [[1, 'server', 9], [0, 'client', 1], [2, 'server', 8]]);
    const text = messages[1];
    assert.equal(text.data?.toString(), 'hello!!');
    assert.equal(text.frames, 2);
    assert.equal(text.compressed, true);
    assert.equal(text.utf8Valid, true);
    assert.equal(text.sentAt, 1_700_000_000_000);
    assert.equal(messages[0].utf8Valid, null);
    assert.deepEqual([messages[2].closeCode, messages[2].closeReason], [1000, 'bye']);
    assert.deepEqual(listWsMessages(db, 5, { afterId: messages[0].id, limit: 1 }).map((m) => m.id), [messages[1].id]);
    assert.equal(listWsMessages(db, 5, { limit: 10, includeData: false })[1].data, null);
    assert.equal(getWsMessage(db, text.id)?.data?.toString(), 'hello!!');
    assert.equal(countWsMessages(db, 5), 3);

    const frames = listWsFrames(db, 5, 0);
    assert.deepEqual(frames.map((f) => [f.frameIndex, f.fin, f.opcode, f.rsv1, f.masked, f.maskKey, f.payloadLength]), [
      [0, false, 1, true, true, '0a0b0c0d', 3],
      [1, true, 0, false, true, '0a0b0c0d', 4],
    ]);
    assert.deepEqual(listWsFrames(db, 5, 1).map((f) => [f.side, f.masked, f.maskKey]), [['server', false, null]]);
  });

  test('payloads are cut at the body cap and flagged', () => {
    const { db, sink, emit } = setup(':memory:', { bodyCap: 4 });
    handshake(emit, 9, 1);
    emit(message(9, 'server', 0, Buffer.from('0123456789')));
    sink.flush();
    const [m] = listWsMessages(db, 9, { limit: 1 });
    assert.equal(m.data?.toString(), '0123');
    assert.equal(m.truncated, true);
    assert.equal(m.decodedSize, 10);
  });

  test('a WebSocket that never closed has no close columns; a reopened file continues the sequence numbers', async () => {
    const path = join(dir, 'reopen.sqlite');
    const first = setup(path);
    handshake(first.emit, 3, 1);
    first.emit(message(3, 'client', 0, Buffer.from('x')));
    first.sink.flush();
    const ws = getWebSocket(first.db, 3)!;
    assert.deepEqual([ws.closedAt, ws.clean, ws.error, ws.closedBy], [null, null, null, null]);
    const lastSeq = listWsMessages(first.db, 3, { limit: 1 })[0].seq;
    await first.sink.close();
    first.db.close();
    const second = setup(path);
    assert.equal(second.lastIds.seq, lastSeq, 'the last message is the newest fact in the file');
    await second.sink.close();
    second.db.close();
  });

  test('a version 1 file is upgraded in place: its rows stay, the WebSocket tables appear', async () => {
    const path = join(dir, 'v1.sqlite');
    const old = new Database(path);
    old.exec(MIGRATIONS.find((m) => m.version === 1)!.sql);
    old.pragma(`application_id = ${APPLICATION_ID}`);
    old.pragma('user_version = 1');
    old.prepare(`INSERT INTO connections (id, listener, client_address, client_port, opened_at, last_seq) VALUES (1, 'proxy', '::1', 1, 0, 4)`).run();
    old.close();
    const upgraded = setup(path);
    assert.ok((upgraded.db.pragma('user_version', { simple: true }) as number) >= 2);
    assert.equal(upgraded.lastIds.seq, 4);
    handshake(upgraded.emit, 1, 2);
    upgraded.emit(message(1, 'client', 0, Buffer.from('after the upgrade')));
    upgraded.sink.flush();
    assert.equal(listWsMessages(upgraded.db, 1, { limit: 5 })[0].data?.toString(), 'after the upgrade');
    await upgraded.sink.close();
    upgraded.db.close();
  });

  test('written from the worker thread: payloads that are views into shared buffers arrive whole and separate', async () => {
    const path = join(dir, 'worker.sqlite');
    const { db, sink, emit } = setup(path, { workerPath: path });
    handshake(emit, 7, 1);
    const slab = Buffer.from('aaaabbbbccccdddd');
    for (let i = 0; i < 4; i++) emit(message(7, i % 2 ? 'server' : 'client', i, slab.subarray(i * 4, i * 4 + 4)));
    await sink.flush();
    assert.equal(slab.toString(), 'aaaabbbbccccdddd', 'the emitted payloads were not moved away');
    await sink.close();
    const reader = openStore(path);
    assert.deepEqual(listWsMessages(reader.db, 7, { limit: 10 }).map((m) => m.data?.toString()), ['aaaa', 'bbbb', 'cccc', 'dddd']);
    assert.equal(listWsFrames(reader.db, 7, 3).length, 1);
    reader.db.close();
    db.close();
  });
});
