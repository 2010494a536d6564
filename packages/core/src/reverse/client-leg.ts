// The client's side of one reverse-proxied exchange, whatever protocol the client speaks: the
// request as received, its body as a stream, and the ways to answer. client-h1.ts and client-h2.ts
// implement it over Node's http and http2 servers.
import type { Readable } from 'node:stream';
import type { HeaderList, HttpProtocol } from '../capture/events.js';

export interface ClientLeg {
  readonly protocol: HttpProtocol;
  /** HTTP/2 stream id; null for HTTP/1. */
  readonly streamId: number | null;
  readonly method: string;
  /** The request target as sent (`:path` on HTTP/2). */
  readonly target: string;
  /** Host, or :authority on HTTP/2; null when the client sent neither. */
  readonly authority: string | null;
  /** The request header list as received (HTTP/2 pseudo-headers included). */
  readonly headers: HeaderList;
  /** A body follows the request head. */
  readonly hasBody: boolean;
  /** The request body, de-framed; paused until someone reads it. */
  readonly body: Readable;
  /** The request's trailers: complete once `body` ended. */
  requestTrailers(): HeaderList;
  readonly headersSent: boolean;
  /** False once the client is gone. */
  readonly open: boolean;
  /** An interim 1xx response (100 is answered by hopscope itself and never relayed). */
  informational(status: number, headers: HeaderList): void;
  /** The final response head; `bodyless` when no body can follow (HEAD, 204, 304). */
  respond(status: number, statusText: string, headers: HeaderList, bodyless: boolean): void;
  /** A body chunk; false when the client's leg is full (wait for `onDrain`). */
  write(chunk: Buffer): boolean;
  onDrain(callback: () => void): void;
  /** Ends the response, with trailers where the client's framing can carry them. */
  finish(trailers: HeaderList): void;
  /** The response cannot be completed: reset the stream (HTTP/2) or close the connection (HTTP/1). */
  abort(h2Code?: number): void;
  /** A short plain-text answer from hopscope itself (no route, upstream failure). */
  answer(status: number, text: string): void;
  /** Called once when the client's leg is done: `complete` when the whole response reached it. */
  onClosed(callback: (complete: boolean) => void): void;
}

/** No body can follow a response with this status to this method (RFC 9110 §6.4.1). */
export function isBodyless(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}
