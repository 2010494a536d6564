// The client leg over HTTP/1.x: Node's http server parsed the request (its parser guards against
// smuggling); the response goes out through its ServerResponse with the upstream's end-to-end
// headers in their order and case, chunked when no length is known (then trailers can follow), and
// chunked too for a client that asked for trailers (`TE: trailers`), which a length would drop.
import type http from 'node:http';
import type { HeaderList, HttpProtocol } from '../capture/events.js';
import { pairsFromRaw } from '../net/hop-by-hop.js';
import { requestFraming } from '../net/request-head.js';
import type { ClientLeg } from './client-leg.js';
import { h1ResponseHeaders, h1Trailers, wantsTrailers } from './header-translation.js';

export class H1ClientLeg implements ClientLeg {
  readonly protocol: HttpProtocol;
  readonly streamId = null;
  readonly method: string;
  readonly target: string;
  readonly authority: string | null;
  readonly headers: HeaderList;
  readonly hasBody: boolean;
  /** The client sent `TE: trailers`: it accepts trailer fields, so they must have a way to reach it. */
  private readonly acceptsTrailers: boolean;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    this.protocol = req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '/';
    this.headers = pairsFromRaw(req.rawHeaders);
    this.authority = req.headers.host ?? null;
    this.hasBody = requestFraming(this.headers) !== 'none';
    this.acceptsTrailers = this.protocol === 'HTTP/1.1' && wantsTrailers(this.headers);
    res.sendDate = false; // the client sees the upstream's Date, not ours
  }

  get body(): http.IncomingMessage {
    return this.req;
  }

  requestTrailers(): HeaderList {
    return pairsFromRaw(this.req.rawTrailers);
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  informational(status: number, headers: HeaderList): void {
    if (this.protocol === 'HTTP/1.0' || this.res.headersSent) return;
    if (status === 102) this.res.writeProcessing();
    else if (status === 103) {
      const hints: Record<string, string | string[]> = {};
      for (const [name, value] of headers) {
        if (name.startsWith(':')) continue;
        const key = name.toLowerCase();
        const existing = hints[key];
        hints[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
      }
      if (hints.link !== undefined) this.res.writeEarlyHints(hints);
    }
  }

  respond(status: number, statusText: string, headers: HeaderList, bodyless: boolean): void {
    // Without a length Node frames the body chunked, and chunked framing can end with trailers.
    const framed = this.acceptsTrailers && !bodyless ? headers.filter(([name]) => name.toLowerCase() !== 'content-length') : headers;
    this.res.writeHead(status, statusText || undefined, h1ResponseHeaders(framed) as unknown as http.OutgoingHttpHeaders);
  }

  write(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onDrain(callback: () => void): void {
    this.res.once('drain', callback);
  }

  finish(trailers: HeaderList): void {
    if (trailers.length > 0 && this.res.chunkedEncoding) {
      try {
        this.res.addTrailers(h1Trailers(trailers));
      } catch {
        // a trailer Node will not send: it stays in the capture only
      }
    }
    this.res.end();
  }

  abort(): void {
    this.res.destroy();
  }

  answer(status: number, text: string): void {
    if (this.res.headersSent || this.res.destroyed) {
      this.res.destroy();
      return;
    }
    const body = Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8');
    this.res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
    this.res.end(body);
  }

  onClosed(callback: (complete: boolean) => void): void {
    // 'close' follows 'finish' when the response went out whole, and comes alone when it did not.
    this.res.once('close', () => callback(this.res.writableFinished));
  }
}
