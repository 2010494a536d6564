// The byte pump between the two legs of a tunnel. It forwards every chunk unchanged with
// backpressure both ways, carries half-closes across, propagates resets, and shows each chunk
// to the tap after handing it to the other leg. The tap never pauses anything.
import type { Duplex } from 'node:stream';
import type { Failure, Side } from '../capture/events.js';
import type { Tap } from '../taps/tap.js';
import { failureFromError } from './failure.js';

export interface RelayOptions {
  client: Duplex;
  server: Duplex;
  tap: Tap;
  /** Bytes already read from either side (during detection) that must go first, in order. */
  pendingFromClient?: Buffer[];
  pendingFromServer?: Buffer[];
  /** Called once when both legs are closed; `error` is null for a clean end. */
  onClosed?: (error: Failure | null) => void;
}

export function relay(options: RelayOptions): void {
  const { client, server, tap } = options;
  let error: Failure | null = null;
  let closedLegs = 0;
  let finished = false;

  const pump = (from: Side, source: Duplex, sink: Duplex, pending: Buffer[] | undefined) => {
    for (const chunk of pending ?? []) {
      sink.write(chunk);
      tap.onData(from, chunk);
    }
    source.on('data', (chunk: Buffer) => {
      if (!sink.write(chunk)) source.pause();
      tap.onData(from, chunk);
    });
    sink.on('drain', () => source.resume());
    const onEnd = () => {
      tap.onEnd(from);
      sink.end();
    };
    // Detection may have seen the end before the relay took over.
    if (source.readableEnded) process.nextTick(onEnd);
    else source.once('end', onEnd);
    source.once('error', (err) => {
      error ??= failureFromError(err, 'reset');
      tearDown(source, sink, err);
    });
    const onClose = () => {
      // A leg that closes without having ended cleanly takes the other one with it.
      if (!source.readableEnded) tearDown(source, sink, null);
      if (++closedLegs === 2) finish();
    };
    if (source.destroyed) process.nextTick(onClose);
    else source.once('close', onClose);
    source.resume();
  };

  const tearDown = (source: Duplex, sink: Duplex, err: Error | null) => {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const resettable = sink as Duplex & { resetAndDestroy?: () => void };
    if (code === 'ECONNRESET' && typeof resettable.resetAndDestroy === 'function' && !sink.destroyed) {
      try {
        resettable.resetAndDestroy(); // pass a reset on as a reset
      } catch {
        sink.destroy(); // a TLS socket cannot be reset (ERR_INVALID_HANDLE_TYPE): close it instead
      }
    } else {
      sink.destroy();
    }
    source.destroy();
  };

  const finish = () => {
    if (finished) return;
    finished = true;
    tap.onClose(error);
    options.onClosed?.(error);
  };

  pump('client', client, server, options.pendingFromClient);
  pump('server', server, client, options.pendingFromServer);
}
