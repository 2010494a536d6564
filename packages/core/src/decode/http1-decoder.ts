// An incremental HTTP/1.x message decoder for one direction of a connection (RFC 9112).
// Pure and synchronous: push(bytes) returns events; an explicit state machine over a byte queue
// returns when the bytes run out. Body chunks are views into the pushed buffers (no copy).
import type { HeaderList } from '../capture/events.js';
import { ByteQueue } from './byte-queue.js';
import { Http1DecodeError } from './http1-errors.js';
import {
  blockLines,
  parseChunkSize,
  parseFields,
  parseRequestLine,
  parseStatusLine,
  requestFraming,
  responseFraming,
  type Http1Version,
} from './http1-syntax.js';

export { Http1DecodeError } from './http1-errors.js';
export type { Http1ErrorCode } from './http1-errors.js';

export type Http1Kind = 'request' | 'response';
export type { Http1Version } from './http1-syntax.js';

export interface Http1Limits {
  /** Largest head (start line and headers) or trailer block, in bytes. Default 64 KiB. */
  maxHeaderBytes?: number;
}

export type Http1Event =
  | { type: 'request-head'; method: string; target: string; version: Http1Version; headers: HeaderList }
  /** Informational heads (1xx other than 101) have no body and no message-end; the real response follows. */
  | { type: 'response-head'; status: number; statusText: string; version: Http1Version; headers: HeaderList; informational: boolean }
  | { type: 'body'; chunk: Buffer }
  | { type: 'trailers'; headers: HeaderList }
  | { type: 'message-end' }
  /** The connection stopped being HTTP (101, or 2xx to CONNECT); `rest` is what followed the head. */
  | { type: 'switched'; rest: Buffer };

type State =
  | 'head' // before or inside a start line and header block
  | 'body-length'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-data-end'
  | 'trailers'
  | 'body-until-close'
  | 'await-switch' // a request that may switch protocols ended: hold bytes until told
  | 'switched'
  | 'ended'
  | 'failed';

const LF = 0x0a;
const CR = 0x0d;
const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;

/** Whether the message after this request may not be HTTP (CONNECT, or an Upgrade offer). */
export function maySwitchProtocols(method: string, headers: HeaderList): boolean {
  return method === 'CONNECT' || headers.some(([name]) => name.toLowerCase() === 'upgrade');
}

export class Http1Decoder {
  private readonly queue = new ByteQueue();
  private readonly maxHeaderBytes: number;
  private state: State = 'head';
  private failure: Http1DecodeError | null = null;
  /** Methods of the requests the responses answer, oldest first (response decoders only). */
  private readonly methods: string[] = [];
  /** Final responses decoded while `methods` was empty (framed as if answering a GET). */
  private unannounced = 0;
  /** Head scan progress, so bytes already searched are not searched again. */
  private scanFrom = 0;
  private lineStart = 0;
  private remaining = 0;
  private endPending = false;
  /** The message being decoded is a request that may switch protocols once it ends. */
  private switchPending = false;

  constructor(
    readonly kind: Http1Kind,
    limits: Http1Limits = {},
  ) {
    this.maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  /** Response decoders: the method of the next request this connection's responses answer. */
  expect(method: string): void {
    // A response decoded before its request was announced already used up this request.
    if (this.unannounced > 0) this.unannounced--;
    else this.methods.push(method);
  }

  /** True after a request that may switch protocols, until resume() or switchProtocols(). */
  get awaitingSwitch(): boolean {
    return this.state === 'await-switch';
  }

  push(chunk: Buffer): Http1Event[] {
    return this.guard((events) => {
      if (this.state === 'switched') return;
      if (this.state === 'ended') throw new Http1DecodeError('data-after-end', `${this.kind} bytes after end`);
      this.queue.push(chunk);
      this.run(events);
    });
  }

  /** The peer half-closed: completes a read-until-close body, or `truncated` mid-message. */
  end(): Http1Event[] {
    return this.guard((events) => {
      if (this.state === 'await-switch') this.endPending = true;
      else this.finish(events);
    });
  }

  /** Requests: the server did not switch; decode the held bytes as HTTP again. */
  resume(): Http1Event[] {
    return this.guard((events) => {
      if (this.state !== 'await-switch') return;
      this.state = 'head';
      this.run(events);
      if (this.endPending && (this.state as State) !== 'await-switch') this.finish(events);
    });
  }

  /** The connection switched protocols: returns the bytes not decoded and stops for good. */
  switchProtocols(): Buffer {
    this.state = 'switched';
    return this.queue.drain();
  }

  /** Runs one public operation; a decode error carries the events before it and is final. */
  private guard(operation: (events: Http1Event[]) => void): Http1Event[] {
    if (this.failure) throw new Http1DecodeError(this.failure.code, `decoder already failed: ${this.failure.message}`);
    const events: Http1Event[] = [];
    try {
      operation(events);
    } catch (err) {
      if (err instanceof Http1DecodeError) {
        err.events = events;
        this.state = 'failed';
        this.failure = err;
      }
      throw err;
    }
    return events;
  }

  private finish(events: Http1Event[]): void {
    if (this.state === 'body-until-close') {
      events.push({ type: 'message-end' });
    } else if (this.state === 'head' && this.queue.length > 0 && !this.onlyLineBreaks()) {
      throw new Http1DecodeError('truncated', `${this.kind} ended inside a message head`);
    } else if (this.state !== 'head' && this.state !== 'ended' && this.state !== 'switched') {
      throw new Http1DecodeError('truncated', `${this.kind} ended inside a message (${this.state})`);
    }
    if (this.state !== 'switched') this.state = 'ended';
  }

  private onlyLineBreaks(): boolean {
    for (let i = 0; i < this.queue.length; i++) {
      const c = this.queue.byteAt(i);
      if (c !== CR && c !== LF) return false;
    }
    return true;
  }

  private run(events: Http1Event[]): void {
    while (this.step(events));
  }

  /** Makes one step of progress; false when it needs more bytes or must stop. */
  private step(events: Http1Event[]): boolean {
    const q = this.queue;
    switch (this.state) {
      case 'head': {
        const block = this.readBlock();
        if (block === null) return false;
        this.onHead(block, events);
        return true;
      }
      case 'body-length': {
        if (q.length === 0) return false;
        const chunk = q.consumeUpTo(this.remaining);
        this.remaining -= chunk.length;
        events.push({ type: 'body', chunk });
        if (this.remaining === 0) this.endMessage(events);
        return true;
      }
      case 'body-until-close':
        if (q.length === 0) return false;
        events.push({ type: 'body', chunk: q.consumeUpTo(q.length) });
        return true;
      case 'chunk-size': {
        const line = this.readLine();
        if (line === null) return false;
        this.remaining = parseChunkSize(line);
        this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
        return true;
      }
      case 'chunk-data': {
        if (q.length === 0) return false;
        const chunk = q.consumeUpTo(this.remaining);
        this.remaining -= chunk.length;
        events.push({ type: 'body', chunk });
        if (this.remaining === 0) this.state = 'chunk-data-end';
        return true;
      }
      case 'chunk-data-end': {
        if (q.length === 0) return false;
        const first = q.byteAt(0);
        if (first === LF) q.skip(1);
        else if (first !== CR) throw new Http1DecodeError('bad-chunk', 'chunk data not followed by CRLF');
        else if (q.length < 2) return false;
        else if (q.byteAt(1) !== LF) throw new Http1DecodeError('bad-chunk', 'chunk data not followed by CRLF');
        else q.skip(2);
        this.state = 'chunk-size';
        return true;
      }
      case 'trailers': {
        const block = this.readBlock();
        if (block === null) return false;
        const headers = parseFields(blockLines(block, 'bad-header'));
        if (headers.length > 0) events.push({ type: 'trailers', headers });
        this.endMessage(events);
        return true;
      }
      case 'await-switch':
        if (q.length > Math.max(this.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES)) {
          throw new Http1DecodeError('switch-pending-too-large', `${q.length} bytes sent before the server answered an upgrade`);
        }
        return false;
      default:
        return false;
    }
  }

  /** Consumes a header block up to and including its empty line, or returns null for more. */
  private readBlock(): Buffer | null {
    const q = this.queue;
    for (;;) {
      const lf = q.indexOf(LF, this.scanFrom);
      if (lf < 0) {
        this.scanFrom = q.length;
        if (q.length > this.maxHeaderBytes) throw tooLarge(this.maxHeaderBytes);
        return null;
      }
      const contentEnd = lf > this.lineStart && q.byteAt(lf - 1) === CR ? lf - 1 : lf;
      if (contentEnd === this.lineStart) {
        if (lf + 1 > this.maxHeaderBytes) throw tooLarge(this.maxHeaderBytes);
        this.scanFrom = 0;
        this.lineStart = 0;
        return q.consume(lf + 1);
      }
      this.lineStart = lf + 1;
      this.scanFrom = lf + 1;
    }
  }

  /** Consumes one line (chunk-size line) and returns it without its line break. */
  private readLine(): string | null {
    const q = this.queue;
    const lf = q.indexOf(LF, this.scanFrom);
    if (lf < 0) {
      this.scanFrom = q.length;
      if (q.length > this.maxHeaderBytes) throw new Http1DecodeError('bad-chunk-size', 'chunk-size line too long');
      return null;
    }
    this.scanFrom = 0;
    const line = q.consume(lf + 1).toString('latin1', 0, lf);
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  }

  private onHead(block: Buffer, events: Http1Event[]): void {
    const lines = blockLines(block, 'bad-start-line');
    // RFC 9112 §2.2: an empty line before a start line is ignored (it reads as an empty block).
    if (lines.length === 0) return;
    const startLine = lines.shift()!;
    if (lines.length > 0 && (lines[0][0] === ' ' || lines[0][0] === '\t')) {
      throw new Http1DecodeError('bad-header', 'whitespace between the start line and the first header');
    }
    const headers = parseFields(lines);
    if (this.kind === 'request') {
      const { method, target, version } = parseRequestLine(startLine);
      events.push({ type: 'request-head', method, target, version, headers });
      const framing = requestFraming(headers);
      this.startBody(framing, events, maySwitchProtocols(method, headers));
      return;
    }
    const { status, statusText, version } = parseStatusLine(startLine);
    const informational = status >= 100 && status < 200 && status !== 101;
    events.push({ type: 'response-head', status, statusText, version, headers, informational });
    if (informational) return;
    let method = this.methods.shift();
    if (method === undefined) {
      this.unannounced++;
      method = 'GET';
    }
    if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) {
      events.push({ type: 'message-end' });
      this.state = 'switched';
      events.push({ type: 'switched', rest: this.queue.drain() });
      return;
    }
    const bodyless = method === 'HEAD' || status === 204 || status === 304;
    this.startBody(bodyless ? 0 : responseFraming(headers), events, false);
  }

  private startBody(framing: number | 'chunked' | 'until-close', events: Http1Event[], maySwitch: boolean): void {
    this.switchPending = maySwitch;
    if (framing === 'chunked') this.state = 'chunk-size';
    else if (framing === 'until-close') this.state = 'body-until-close';
    else if (framing === 0) this.endMessage(events);
    else {
      this.remaining = framing;
      this.state = 'body-length';
    }
  }

  private endMessage(events: Http1Event[]): void {
    events.push({ type: 'message-end' });
    this.state = this.switchPending ? 'await-switch' : 'head';
    this.switchPending = false;
  }
}

function tooLarge(limit: number): Http1DecodeError {
  return new Http1DecodeError('headers-too-large', `header block over ${limit} bytes`);
}
