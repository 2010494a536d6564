import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CaptureBus } from '../src/capture/bus.js';
import type { CaptureEvent } from '../src/capture/events.js';

describe('CaptureBus', { timeout: 5_000 }, () => {
  test('stamps monotonic sequence numbers, continuing from the first one given, and a time when none was set', () => {
    const bus = new CaptureBus(41);
    const seen: CaptureEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    bus.emit({ kind: 'decode.failed', connId: 1, decoder: 'h2', side: 'client', code: 'x', message: 'y' });
    bus.emit({ kind: 'decode.failed', connId: 1, decoder: 'h2', side: 'server', code: 'x', message: 'y', time: 123.5 });
    assert.deepEqual(seen.map((e) => e.seq), [41, 42]);
    assert.ok(seen[0].time > 1.6e12, 'epoch milliseconds');
    assert.equal(seen[1].time, 123.5, 'a time given by the producer is kept');
  });

  test('a failing listener neither stops the others nor reaches the emitter', () => {
    const bus = new CaptureBus();
    let reached = 0;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    bus.subscribe(() => {
      throw new Error('listener bug');
    });
    bus.subscribe(() => reached++);
    assert.doesNotThrow(() => bus.emit({ kind: 'decode.failed', connId: 1, decoder: 'ws', side: 'client', code: 'x', message: 'y' }));
    assert.equal(reached, 1);
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        process.off('warning', onWarning);
        assert.ok(warnings.some((w) => w.includes('listener bug')));
        resolve();
      }),
    );
  });

  test('unsubscribing stops delivery; with no listener the bus reports it has none', () => {
    const bus = new CaptureBus();
    let n = 0;
    const stop = bus.subscribe(() => n++);
    assert.equal(bus.hasListeners, true);
    bus.emit({ kind: 'decode.failed', connId: 1, decoder: 'ws', side: 'client', code: 'x', message: 'y' });
    stop();
    assert.equal(bus.hasListeners, false);
    bus.emit({ kind: 'decode.failed', connId: 1, decoder: 'ws', side: 'client', code: 'x', message: 'y' });
    assert.equal(n, 1);
  });
});
