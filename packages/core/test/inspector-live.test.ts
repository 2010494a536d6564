// The live WebSocket over real proxied traffic: snapshot with a watermark, then batched events in
// order; filters; resume with `since`; a client that stops acknowledging is told to resync.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExchangeRow, ServerMessage } from '../src/inspector/protocol.js';
import { LiveQueue } from '../src/inspector/live-queue.js';
import { openLive, startRig, type LiveClient, type Rig } from './inspector-harness.js';

type Events = Extract<ServerMessage, { type: 'events' }>;
const pathOf = (e: { url: string }) => new URL(e.url).pathname;

/** Resolves once the client has seen `path` complete in some events message; acks every batch when asked. */
async function waitComplete(live: LiveClient, path: string): Promise<ExchangeRow> {
  const m = await live.next('events', (e) => e.exchanges.some((r) => pathOf(r) === path && r.state === 'complete'));
  return m.exchanges.find((r) => pathOf(r) === path && r.state === 'complete')!;
}

function autoAck(live: LiveClient): void {
  live.ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as ServerMessage;
    if (m.type === 'events') live.send({ type: 'ack', n: m.n });
  });
}

describe('inspector live hub', { timeout: 30_000 }, () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig();
    await rig.request('/before-1');
    await rig.request('/before-2');
    rig.proxy.flush();
  });
  after(() => rig.close());

  test('snapshot with a watermark, then live events for new traffic, in order', async () => {
    const live = await openLive(rig);
    autoAck(live);
    const hello = await live.next('hello');
    live.send({ type: 'subscribe' });
    const snap = await live.next('snapshot');
    assert.equal(snap.mode, 'full');
    assert.deepEqual(snap.exchanges.map(pathOf), ['/before-2', '/before-1'], 'newest first');
    assert.ok(snap.seq >= hello.seq && snap.seq > 0);
    assert.ok(snap.exchanges.every((r) => r.lastSeq <= snap.seq), 'the snapshot is current to its watermark');

    for (const path of ['/live-1', '/live-2', '/live-3']) await rig.request(path);
    const last = await waitComplete(live, '/live-3');
    assert.equal(last.status, 200);

    const idx = live.messages.indexOf(snap);
    const events = live.messages.slice(idx + 1).filter((m): m is Events => m.type === 'events');
    assert.ok(live.messages.slice(0, idx).every((m) => m.type !== 'events'), 'nothing live before the snapshot');
    let prevSeq = snap.seq;
    for (const e of events) {
      assert.ok(e.seq > prevSeq, 'watermarks grow');
      assert.ok(e.exchanges.every((r) => r.lastSeq <= e.seq), 'only committed rows');
      prevSeq = e.seq;
    }
    assert.deepEqual(events.map((e) => e.n), events.map((_, i) => i + 1), 'batches are numbered');
    // Each exchange first appears in id order, and its last state is complete.
    const firstSeen = [...new Set(events.flatMap((e) => e.exchanges.map(pathOf)))];
    assert.deepEqual(firstSeen, ['/live-1', '/live-2', '/live-3']);
    const latest = new Map<number, ExchangeRow>();
    for (const e of events) for (const r of e.exchanges) latest.set(r.id, r);
    assert.ok([...latest.values()].every((r) => r.state === 'complete'));
    assert.ok(events.some((e) => e.connections.length > 0), 'connection updates are announced');
    live.close();
  });

  test('batches are at least an interval apart', async () => {
    const live = await openLive(rig);
    autoAck(live);
    live.send({ type: 'subscribe' });
    await live.next('snapshot');
    const subscribedAt = performance.now();
    const arrivals: number[] = [];
    live.ws.on('message', (data) => {
      if ((JSON.parse(data.toString()) as ServerMessage).type === 'events') arrivals.push(performance.now());
    });
    await Promise.all(Array.from({ length: 30 }, (_, i) => rig.request(`/burst-${i}`)));
    await waitComplete(live, '/burst-29');
    const seen = new Set(live.messages.flatMap((m) => (m.type === 'events' ? m.exchanges.map(pathOf) : [])));
    assert.ok(seen.has('/burst-0') && seen.has('/burst-29'));
    // 30 exchanges make ~120 capture events; batching keeps the messages few. Sent at least 50 ms
    // apart, n messages need (n - 1) * 50 ms, all after the subscription and before the last arrival
    // (measured that way, a busy event loop delaying one arrival cannot fake a short gap).
    assert.ok(arrivals.length < 30, `${arrivals.length} messages`);
    const span = arrivals[arrivals.length - 1] - subscribedAt;
    assert.ok((arrivals.length - 1) * 50 <= span + 1, `${arrivals.length} messages within ${span.toFixed(0)} ms`);
    live.close();
  });

  test('a filtered subscription sees only matching rows; a bad filter is an error message', async () => {
    const live = await openLive(rig);
    autoAck(live);
    live.send({ type: 'subscribe', filter: 'stauts:200' });
    const err = await live.next('error');
    assert.equal(err.code, 'bad-filter');
    assert.match(err.message, /Did you mean "status"/);
    assert.deepEqual([err.start, err.end], [0, 6]);

    live.send({ type: 'subscribe', filter: 'method:POST or status:404' });
    const snap = await live.next('snapshot');
    assert.deepEqual(snap.exchanges, []);
    await rig.request('/plain-get');
    await rig.request('/echo', { method: 'POST', body: 'x' });
    await rig.request('/status/404');
    const notFound = await waitComplete(live, '/status/404');
    assert.equal(notFound.status, 404);
    const seen = new Set(live.messages.flatMap((m) => (m.type === 'events' ? m.exchanges.map(pathOf) : [])));
    assert.ok(seen.has('/echo'));
    assert.ok(!seen.has('/plain-get'), 'a non-matching exchange is never sent');
    live.close();
  });

  test('a row that stops matching is announced as removed', async () => {
    const live = await openLive(rig);
    autoAck(live);
    live.send({ type: 'subscribe', filter: 'not status:200' });
    await live.next('snapshot');
    // Drive the capture pipeline (bus → store → commit → hub) step by step with ids of our own.
    const { bus } = rig.proxy;
    const connId = 900_001;
    const exchangeId = 900_001;
    bus.emit({ kind: 'conn.opened', connId, parentId: null, listener: 'proxy', clientAddress: '127.0.0.1', clientPort: 1 });
    bus.emit({ kind: 'http.request', exchangeId, connId, streamId: null, protocol: 'HTTP/1.1', method: 'GET', target: '/step',
      url: 'http://step.test/step', scheme: 'http', host: 'step.test', port: 80, headers: [['Host', 'step.test']] });
    rig.proxy.flush();
    const pending = await live.next('events', (e) => e.exchanges.some((r) => r.id === exchangeId));
    assert.equal(pending.exchanges.find((r) => r.id === exchangeId)!.state, 'pending', 'no status yet: matches');
    bus.emit({ kind: 'http.response', exchangeId, protocol: 'HTTP/1.1', status: 200, statusText: 'OK', headers: [] });
    rig.proxy.flush();
    const gone = await live.next('events', (e) => e.removed.includes(exchangeId));
    assert.ok(!gone.exchanges.some((r) => r.id === exchangeId));
    live.close();
  });

  test('resume with since sends only what changed (delta)', async () => {
    const first = await openLive(rig);
    first.send({ type: 'subscribe' });
    const snap = await first.next('snapshot');
    first.close();
    await rig.request('/while-away');
    rig.proxy.flush();
    const again = await openLive(rig);
    again.send({ type: 'subscribe', since: snap.seq });
    const delta = await again.next('snapshot');
    assert.equal(delta.mode, 'delta');
    assert.deepEqual(delta.exchanges.map(pathOf), ['/while-away']);
    assert.ok(delta.seq > snap.seq);
    again.close();
  });

  test('a paused client gets no rows, only the count of new matching exchanges; resuming brings them', async () => {
    // A rig of its own: "new" means an id above the newest at the pause, and another test here stores id 900001.
    const own = await startRig();
    try {
      const live = await openLive(own);
      autoAck(live);
      live.send({ type: 'subscribe', filter: 'method:POST' });
      const snap = await live.next('snapshot');
      live.send({ type: 'pause' });
      assert.equal((await live.next('paused')).newExchanges, 0, 'the pause is acknowledged with nothing new yet');
      await own.request('/paused-get');
      await own.request('/echo', { method: 'POST', body: 'one' });
      await own.request('/echo', { method: 'POST', body: 'two' });
      own.proxy.flush();
      const counted = await live.next('paused', (m) => m.newExchanges === 2);
      assert.ok(counted.seq > snap.seq);
      const from = live.messages.indexOf(snap);
      assert.ok(!live.messages.slice(from).some((m) => m.type === 'events'), 'no rows while paused');

      live.send({ type: 'subscribe', filter: 'method:POST', since: snap.seq });
      const delta = await live.next('snapshot', () => true, from + 1);
      assert.equal(delta.mode, 'delta');
      assert.deepEqual(delta.exchanges.map(pathOf), ['/echo', '/echo'], 'what was counted, and only that');
      await own.request('/echo', { method: 'POST', body: 'three' });
      await waitComplete(live, '/echo');
      assert.ok(!live.messages.slice(live.messages.indexOf(delta)).some((m) => m.type === 'paused'), 'no count once resumed');
      live.close();
    } finally {
      await own.close();
    }
  });

  test('a client that stops acknowledging is told to resync; its queue is dropped', async () => {
    const slowRig = await startRig({ live: { maxInFlight: 1, maxQueue: 5 } });
    try {
      const slow = await openLive(slowRig);
      const keeping = await openLive(slowRig);
      autoAck(keeping);
      slow.send({ type: 'subscribe' });
      keeping.send({ type: 'subscribe' });
      await slow.next('snapshot');
      await keeping.next('snapshot');
      await slowRig.request('/first');
      await slow.next('events');
      // The first batch is never acknowledged: everything after it waits in the bounded queue.
      for (let i = 0; i < 12; i++) await slowRig.request(`/flood-${i}`);
      const resync = await slow.next('resync');
      assert.equal(resync.reason, 'overflow');
      const sent = slow.messages.filter((m) => m.type === 'events').length;
      assert.equal(sent, 1, 'one unacknowledged batch, then nothing but the resync');
      await waitComplete(keeping, '/flood-11');
      assert.ok(!keeping.messages.some((m) => m.type === 'resync'), 'a client that keeps up is not affected');

      // After a resync the client subscribes again and gets everything in a fresh snapshot.
      const from = slow.messages.length;
      slow.send({ type: 'subscribe' });
      const fresh = await slow.next('snapshot', () => true, from);
      assert.equal(fresh.exchanges.filter((r) => pathOf(r).startsWith('/flood-')).length, 12);
      slow.close();
      keeping.close();
    } finally {
      await slowRig.close();
    }
  });

  test('the queue coalesces updates by id, keeping the newest', () => {
    const q = new LiveQueue();
    const row = (id: number, lastSeq: number, state: ExchangeRow['state']) => ({ id, lastSeq, state }) as ExchangeRow;
    q.addRows([row(2, 5, 'pending'), row(1, 3, 'pending')]);
    q.addRows([row(2, 9, 'complete')]);
    q.addRows([row(2, 7, 'responded')]);
    q.addRemoved([1]);
    q.addConnections([{ id: 1, closedAt: null, errorReason: null, clientAlpn: null, upstreamAlpn: null, lastSeq: 1 }]);
    assert.equal(q.size, 3);
    const batch = q.take();
    assert.deepEqual(batch.exchanges.map((r) => [r.id, r.state]), [[2, 'complete']]);
    assert.deepEqual(batch.removed, [1]);
    assert.equal(q.size, 0);
  });
});
