// The upstream side of one reverse-proxied exchange, whatever protocol the upstream speaks: the
// request body goes in with backpressure, the response comes out as events. h1-call.ts and
// h2-call.ts implement it over Node's http client and an http2 session.
import type { ExchangeTimings, Failure, HeaderList, HttpProtocol } from '../capture/events.js';
import type { DialTimings } from './upstream-origins.js';
import type { TlsLegInfo } from './upstream-tls.js';

export interface UpstreamResponseHead {
  protocol: HttpProtocol;
  status: number;
  statusText: string;
  /** As received (HTTP/2 pseudo-headers included). */
  headers: HeaderList;
  remoteAddress?: string;
  remotePort?: number;
}

export interface UpstreamCallEvents {
  informational(status: number, headers: HeaderList): void;
  response(head: UpstreamResponseHead): void;
  data(chunk: Buffer): void;
  /** The response ended, with its trailers (empty when none). */
  end(trailers: HeaderList): void;
  /** The call failed (before or after the response head); called at most once, never after `end`. */
  error(failure: Failure): void;
  /** The upstream TLS connection the call went over, where the call itself found it (a pooled socket). */
  upstreamTls(leg: TlsLegInfo): void;
}

export interface UpstreamCall {
  /** A request body chunk; false when the upstream leg is full (wait for `onDrain`). */
  write(chunk: Buffer): boolean;
  onDrain(callback: () => void): void;
  /** The request body is complete; trailers go where the framing allows. */
  end(trailers: HeaderList): void;
  /** Stops and restarts the response body (backpressure from the client). */
  pause(): void;
  resume(): void;
  /** Gives the call up (the client went away). */
  abort(): void;
  /** Dial timings of a fresh connection, null where it was reused. */
  readonly timings: Pick<ExchangeTimings, 'dnsMs' | 'connectMs' | 'tlsMs'>;
}

export function timingsOf(dial: DialTimings | null): Pick<ExchangeTimings, 'dnsMs' | 'connectMs' | 'tlsMs'> {
  return { dnsMs: dial?.dnsMs ?? null, connectMs: dial?.connectMs ?? null, tlsMs: dial?.tlsMs ?? null };
}
