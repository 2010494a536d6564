// The client leg over HTTP/2 (h2 after TLS, h2c with prior knowledge): one stream of Node's http2
// server. The response goes out with `waitForTrailers`, so that trailers (or an empty END_STREAM)
// follow the last DATA whatever the upstream sends; a failure after the head resets the stream.
import http2 from 'node:http2';
import type { HeaderList, HttpProtocol } from '../capture/events.js';
import type { ClientLeg } from './client-leg.js';
import { h2ResponseHeaders, h2Trailers, pairsFromRawH2, pseudoHeader } from './header-translation.js';

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

export class H2ClientLeg implements ClientLeg {
  readonly streamId: number;
  readonly method: string;
  readonly target: string;
  readonly authority: string | null;
  readonly headers: HeaderList;
  readonly hasBody: boolean;
  private trailers: HeaderList = [];
  private pendingTrailers: http2.OutgoingHttpHeaders = {};
  private finished = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    rawHeaders: string[],
    readonly protocol: Extract<HttpProtocol, 'h2' | 'h2c'>,
  ) {
    this.streamId = stream.id ?? 0;
    this.headers = pairsFromRawH2(rawHeaders);
    this.method = pseudoHeader(this.headers, ':method') ?? 'GET';
    this.target = pseudoHeader(this.headers, ':path') ?? '';
    this.authority = pseudoHeader(this.headers, ':authority') ?? this.headers.find(([n]) => n === 'host')?.[1] ?? null;
    this.hasBody = !stream.endAfterHeaders;
    stream.on('error', () => {}); // how it ended is read from rstCode and the close
    stream.on('trailers', (_h: unknown, _f: unknown, raw: string[]) => (this.trailers = pairsFromRawH2(raw)));
    stream.on('wantTrailers', () => stream.sendTrailers(this.pendingTrailers));
    // Like Node's HTTP/1 server: hopscope tells the client to go on, the upstream never sees Expect.
    if (this.hasBody && this.headers.some(([n, v]) => n === 'expect' && v.toLowerCase() === '100-continue')) {
      stream.additionalHeaders({ ':status': 100 });
    }
  }

  get body(): http2.ServerHttp2Stream {
    return this.stream;
  }

  requestTrailers(): HeaderList {
    return this.trailers;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get open(): boolean {
    return !this.stream.destroyed && !this.stream.closed;
  }

  informational(status: number, headers: HeaderList): void {
    if (status === 100 || this.stream.headersSent || !this.open) return;
    this.stream.additionalHeaders(h2ResponseHeaders(status, headers));
  }

  respond(status: number, _statusText: string, headers: HeaderList, bodyless: boolean): void {
    this.stream.respond(h2ResponseHeaders(status, headers), bodyless ? { endStream: true } : { waitForTrailers: true });
    if (bodyless) this.finished = true;
  }

  write(chunk: Buffer): boolean {
    return this.stream.write(chunk);
  }

  onDrain(callback: () => void): void {
    this.stream.once('drain', callback);
  }

  finish(trailers: HeaderList): void {
    if (this.finished) return;
    this.finished = true;
    this.pendingTrailers = h2Trailers(trailers);
    this.stream.end();
  }

  abort(h2Code: number = NGHTTP2_INTERNAL_ERROR): void {
    if (!this.stream.destroyed) this.stream.close(h2Code);
  }

  answer(status: number, text: string): void {
    if (this.stream.headersSent || !this.open) {
      this.abort();
      return;
    }
    const body = Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8');
    this.finished = true;
    this.stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    this.stream.end(body);
  }

  onClosed(callback: (complete: boolean) => void): void {
    this.stream.once('close', () => callback(this.finished && (this.stream.rstCode ?? NGHTTP2_NO_ERROR) === NGHTTP2_NO_ERROR));
  }
}
