// A tap watches the bytes a relay forwards and turns them into capture events. It is passive:
// it never changes, delays or pushes back on what is forwarded. One object per connection.
import type { CaptureBus } from '../capture/bus.js';
import type { IdAllocator } from '../capture/ids.js';
import type { Failure, HeaderList, Side } from '../capture/events.js';

export interface Tap {
  /** Bytes `from` one side, in order, exactly as forwarded. */
  onData(from: Side, chunk: Buffer): void;
  /** That side half-closed (sent FIN / close_notify). */
  onEnd(from: Side): void;
  /** The connection is gone; `error` says why when it did not end cleanly. */
  onClose(error: Failure | null): void;
}

/** A protocol switch seen by the HTTP/1 tap (101 Switching Protocols), for the next tap. */
export interface UpgradeInfo {
  exchangeId: number;
  requestHeaders: HeaderList;
  responseHeaders: HeaderList;
}

export interface TapContext {
  connId: number;
  bus: CaptureBus;
  ids: IdAllocator;
  /** `https` when the bytes were decrypted from TLS. */
  scheme: 'http' | 'https';
  /** The tunnel's target, used to build URLs when a request has no Host. */
  host: string;
  port: number;
  /** Body bytes per message handed to the bus at most; the rest is only counted. */
  bodyCaptureLimit: number;
  /** Largest HTTP/1 header block the decoders accept (--max-header-size; the decoder's default when absent). */
  maxHeaderBytes?: number;
  /** Limits of the WebSocket tap a protocol switch may start (defaults when absent). */
  wsLimits?: WsLimits;
  /** Called after a 101: returns the tap for the new protocol, or null to go opaque. */
  onUpgrade?: (info: UpgradeInfo) => Tap | null;
}

/** How far the WebSocket tap decodes before it gives up on a deflate bomb. */
export interface WsLimits {
  /** Largest decoded size of one compressed message. */
  messageCap?: number;
  /** Decoded/compressed ratio past which a message over the ratio floor is a bomb. */
  inflateRatio?: number;
}

/** A tap that only counts (the relay counts bytes itself): used for opaque tunnels. */
export const opaqueTap: Tap = {
  onData() {},
  onEnd() {},
  onClose() {},
};

/**
 * Wraps a tap so that an exception inside it makes the tap opaque for the rest of the
 * connection and is reported once, instead of reaching the relay.
 */
export function guardTap(tap: Tap, report: (err: unknown, side: Side | null) => void): Tap {
  let broken = false;
  const fail = (err: unknown, side: Side | null) => {
    broken = true;
    report(err, side);
  };
  return {
    onData(from, chunk) {
      if (broken) return;
      try {
        tap.onData(from, chunk);
      } catch (err) {
        fail(err, from);
      }
    },
    onEnd(from) {
      if (broken) return;
      try {
        tap.onEnd(from);
      } catch (err) {
        fail(err, from);
      }
    },
    onClose(error) {
      try {
        tap.onClose(error);
      } catch (err) {
        if (!broken) fail(err, null);
      }
    },
  };
}
