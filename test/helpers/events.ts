// Records every capture event a test's proxy emits, and waits for the ones a test expects.
import type { CaptureBus } from '../../packages/core/src/capture/bus.js';
import type { CaptureEvent } from '../../packages/core/src/capture/events.js';

export interface EventLog {
  events: CaptureEvent[];
  /** Resolves with the first event (already seen or future) matching `match`. */
  waitFor<E extends CaptureEvent>(match: (e: CaptureEvent) => e is E, timeoutMs?: number): Promise<E>;
  waitFor(match: (e: CaptureEvent) => boolean, timeoutMs?: number): Promise<CaptureEvent>;
  of<K extends CaptureEvent['kind']>(kind: K): Array<Extract<CaptureEvent, { kind: K }>>;
  stop(): void;
}

export function recordEvents(bus: CaptureBus): EventLog {
  const events: CaptureEvent[] = [];
  let waiters: Array<{ match: (e: CaptureEvent) => boolean; resolve: (e: CaptureEvent) => void }> = [];
  const stop = bus.subscribe((event) => {
    events.push(event);
    waiters = waiters.filter((w) => {
      if (!w.match(event)) return true;
      w.resolve(event);
      return false;
    });
  });
  return {
    events,
    waitFor(match: (e: CaptureEvent) => boolean, timeoutMs = 5_000) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<CaptureEvent>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching capture event within ${timeoutMs} ms; saw: ${events.map((e) => e.kind).join(', ')}`)), timeoutMs);
        waiters.push({
          match,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
    of(kind) {
      return events.filter((e) => e.kind === kind) as never;
    },
    stop,
  } as EventLog;
}
