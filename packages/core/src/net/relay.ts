// The byte pump between the two legs of a tunnel. It forwards every chunk unchanged with
// backpressure both ways, carries half-closes across, propagates resets, and shows each chunk
// to the tap after handing it to the other leg. The tap never pauses anything.
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Failure, Side } from '../capture/events.js';
import type { Tap } from '../taps/tap.js';
import { failureFromError } from './failure.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_CONNECT_ERROR } = http2.constants;

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
    // A TLS read hands over one record (16 KiB at most) at a time, often several in one turn:
    // written corked, they leave together in one system call (8-10% more for bulk transfers).
    let corked = false;
    const uncork = () => {
      corked = false;
      sink.uncork();
    };
    source.on('data', (chunk: Buffer) => {
      if (!corked) {
        corked = true;
        sink.cork();
        process.nextTick(uncork);
      }
      if (!sink.write(chunk)) source.pause();
      tap.onData(from, chunk);
    });
    sink.on('drain', () => source.resume());
    const onEnd = () => {
      // A reset HTTP/2 stream ends its readable side too: that is no half-close.
      if (wasStreamReset(source)) return tearDown(source, sink, null);
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
      // A leg that closes without having ended cleanly takes the other one with it; so does one
      // that closes while the other still has bytes for it (an HTTP/2 stream destroyed with its
      // session ends its readable side first) or that was reset right after its END_STREAM.
      if (!source.readableEnded || !sink.readableEnded || wasStreamReset(source)) tearDown(source, sink, null);
      if (++closedLegs === 2) finish();
    };
    if (source.destroyed) process.nextTick(onClose);
    else source.once('close', onClose);
    source.resume();
  };

  const tearDown = (source: Duplex, sink: Duplex, err: Error | null) => {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if ((code === 'ECONNRESET' || wasStreamReset(source)) && !sink.destroyed) resetLeg(sink); // pass a reset on as a reset
    else sink.destroy();
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

/** An HTTP/2 stream (the client leg of an HTTP/2 CONNECT tunnel) that closed with RST_STREAM. */
function wasStreamReset(leg: Duplex): boolean {
  const rstCode = (leg as { rstCode?: number }).rstCode;
  return typeof rstCode === 'number' && rstCode !== NGHTTP2_NO_ERROR;
}

/** TCP: RST. HTTP/2 stream: RST_STREAM CONNECT_ERROR (RFC 9113 §8.5). Anything else: closed. */
function resetLeg(sink: Duplex): void {
  const leg = sink as Duplex & { resetAndDestroy?: () => void; close?: (code: number) => void };
  if (typeof leg.resetAndDestroy === 'function' && !sink.writableEnded) {
    // (After end() Node cannot reset: libuv refuses while the FIN is pending and the socket never closes.)
    try {
      leg.resetAndDestroy();
    } catch {
      sink.destroy(); // a TLS socket cannot be reset (ERR_INVALID_HANDLE_TYPE): close it instead
    }
  } else if ('rstCode' in leg && typeof leg.close === 'function') {
    leg.close(NGHTTP2_CONNECT_ERROR);
  } else {
    sink.destroy();
  }
}
