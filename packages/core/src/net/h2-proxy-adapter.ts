// The request and response sides of a proxied HTTP/2 stream, shaped like the parts of Node's
// IncomingMessage and ServerResponse that UpstreamExchange uses, so one exchange implementation
// serves HTTP/1.1 and HTTP/2 clients. Node's own http2 compatibility objects do not fit: they
// lack writableFinished, turn a header list given to addTrailers into trailers named "0", "1",
// and warn on every status text.
import http2 from 'node:http2';
import type { HeaderList } from '../capture/events.js';

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2); Node throws on them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

type EventListener = (...args: never[]) => void;

/** The request body as UpstreamExchange reads it: data, end, pause/resume, raw trailers. */
export class H2ProxyRequest {
  readonly rawTrailers: string[] = [];

  constructor(private readonly stream: http2.ServerHttp2Stream) {
    stream.once('trailers', (_headers: http2.IncomingHttpHeaders, _flags: number, raw?: string[]) => {
      if (raw) this.rawTrailers.push(...raw);
    });
  }

  on(event: 'data' | 'end', listener: EventListener): this {
    this.stream.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  once(event: 'data' | 'end', listener: EventListener): this {
    this.stream.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  isPaused(): boolean {
    return this.stream.isPaused();
  }
}

/** The response as UpstreamExchange writes it: head, 100-continue, body with backpressure, trailers. */
export class H2ProxyResponse {
  /** Kept for the ServerResponse shape; an HTTP/2 response carries the upstream's Date as is. */
  sendDate = false;
  private readonly trailers: HeaderList = [];

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headRequest: boolean,
  ) {
    stream.on('wantTrailers', () => {
      if (!stream.destroyed && !stream.closed) stream.sendTrailers(toH2Fields(this.trailers)); // none: an empty DATA frame ends the stream
    });
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  once(event: 'close' | 'drain', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }

  /** `writeHead(status, statusText, headers)` or `writeHead(status, headers)`; HTTP/2 has no status text. */
  writeHead(status: number, textOrHeaders?: string | Fields, headers?: Fields): this {
    const fields = typeof textOrHeaders === 'string' || textOrHeaders === undefined ? headers : textOrHeaders;
    const out = toH2Fields(fieldPairs(fields));
    out[':status'] = status;
    const bodiless = this.headRequest || status === 204 || status === 205 || status === 304;
    this.stream.respond(out, { waitForTrailers: !bodiless });
    return this;
  }

  writeContinue(): void {
    if (!this.stream.headersSent && !this.stream.closed) this.stream.additionalHeaders({ ':status': 100 });
  }

  addTrailers(trailers: Fields): void {
    this.trailers.push(...fieldPairs(trailers));
  }

  write(chunk: Buffer): boolean {
    if (this.stream.writableEnded || this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  end(chunk?: Buffer): void {
    if (!this.stream.headersSent) this.writeHead(200);
    if (this.stream.writableEnded || this.stream.destroyed) return;
    if (chunk) this.stream.end(chunk);
    else this.stream.end();
  }

  /** An incomplete response: the client must not take it for a whole one. */
  destroy(): void {
    if (!this.stream.closed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
    this.stream.destroy();
  }
}

/** Headers as UpstreamExchange passes them: a flat [name, value, …] list, a header list, or an object. */
type Fields = string[] | HeaderList | Record<string, string | number | string[]>;

function fieldPairs(fields: Fields | undefined): HeaderList {
  if (!fields) return [];
  if (Array.isArray(fields)) {
    if (fields.length > 0 && Array.isArray(fields[0])) return fields as HeaderList;
    const flat = fields as string[];
    const pairs: HeaderList = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
    return pairs;
  }
  const pairs: HeaderList = [];
  for (const [name, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, String(v)]);
  }
  return pairs;
}

/** Lower-case names, repeated fields as arrays, connection-specific and pseudo fields dropped. */
function toH2Fields(pairs: HeaderList): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [rawName, value] of pairs) {
    const name = rawName.toLowerCase();
    if (name.startsWith(':') || CONNECTION_SPECIFIC.has(name)) continue;
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  return out;
}
