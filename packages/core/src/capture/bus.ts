// The capture bus: synchronous fan-out of capture events to subscribers (the store, later the
// inspector). Free when nobody listens. Stamps monotonic sequence numbers and times.
import type { CaptureEvent, NewCaptureEvent } from './events.js';
import { nowMs } from './clock.js';

export type CaptureListener = (event: CaptureEvent) => void;

export class CaptureBus {
  private listeners: CaptureListener[] = [];
  private lastSeq: number;

  /** `firstSeq` lets a capture file that already holds events continue its numbering. */
  constructor(firstSeq = 1) {
    this.lastSeq = firstSeq - 1;
  }

  get hasListeners(): boolean {
    return this.listeners.length > 0;
  }

  subscribe(listener: CaptureListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /**
   * Stamps and delivers an event. The bus takes the object over and stamps it in place (copying
   * every event cost more than anything else on the bus): emit a fresh object each time.
   */
  emit(event: NewCaptureEvent): void {
    const stamped = event as CaptureEvent;
    stamped.seq = ++this.lastSeq;
    if (stamped.time === undefined) stamped.time = nowMs();
    for (const listener of this.listeners) {
      try {
        listener(stamped);
      } catch (err) {
        // A subscriber's bug must never reach the relay that emitted the event.
        process.emitWarning(`hopscope: capture listener failed: ${(err as Error).stack ?? err}`);
      }
    }
  }
}
