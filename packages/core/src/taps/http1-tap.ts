// The HTTP/1 tap: decodes both directions of a relayed connection into `http.*` capture events.
// Responses pair with requests first in, first out. A protocol switch (101, or 2xx to CONNECT)
// hands the rest of the connection to the next tap; a decode error makes the tap opaque.
import type { Failure, HeaderList, HttpProtocol, Side } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { Http1Decoder, Http1DecodeError, maySwitchProtocols, type Http1Event } from '../decode/http1-decoder.js';
import type { Tap, TapContext } from './tap.js';

interface Exchange {
  id: number;
  method: string;
  requestHeaders: HeaderList;
  maySwitch: boolean;
  requestEnded: boolean;
  /** The final (non-informational) response head was seen. */
  responseStarted: boolean;
  responseEnded: boolean;
  requestBodySize: number;
  responseBodySize: number;
  requestEnd: number | null;
  responseStart: number | null;
}

type Mode = 'http' | 'upgraded' | 'opaque' | 'closed';

export class Http1Tap implements Tap {
  private readonly requests: Http1Decoder;
  private readonly responses: Http1Decoder;
  /** Exchanges not yet completed or failed, oldest first. */
  private open: Exchange[] = [];
  private requesting: Exchange | null = null;
  private responding: Exchange | null = null;
  private mode: Mode = 'http';
  private next: Tap | null = null;
  /** Sides that half-closed, in order. */
  private readonly ended: Side[] = [];
  private readonly truncated = new Set<Side>();
  /** The exchange whose response switches protocols, between its head and the switch. */
  private switching: { ex: Exchange; responseHeaders: HeaderList } | null = null;
  /** Work to run once decoding of the current bytes is over (the upgrade hand-over). */
  private after: (() => void) | null = null;

  constructor(private readonly ctx: TapContext) {
    const limits = { maxHeaderBytes: ctx.maxHeaderBytes };
    this.requests = new Http1Decoder('request', limits);
    this.responses = new Http1Decoder('response', limits);
  }

  onData(from: Side, chunk: Buffer): void {
    if (this.mode === 'upgraded') return this.next!.onData(from, chunk);
    if (this.mode !== 'http') return;
    this.process(from, () => this.decoder(from).push(chunk));
    this.runAfter();
  }

  onEnd(from: Side): void {
    if (this.mode === 'upgraded') return this.next!.onEnd(from);
    if (!this.ended.includes(from)) this.ended.push(from);
    if (this.mode !== 'http') return;
    this.process(from, () => this.decoder(from).end());
    this.runAfter();
  }

  onClose(error: Failure | null): void {
    if (this.mode === 'upgraded') return this.next!.onClose(error);
    if (this.mode === 'http') {
      for (const ex of this.open) this.emitFailed(ex, error ?? this.closeFailure(ex));
      this.open = [];
    }
    this.mode = 'closed';
  }

  private decoder(side: Side): Http1Decoder {
    return side === 'client' ? this.requests : this.responses;
  }

  /** Decodes and handles one side's events; any error ends decoding for the connection. */
  private process(side: Side, produce: () => Http1Event[]): void {
    let failure: unknown = null;
    let events: Http1Event[] = [];
    try {
      events = produce();
    } catch (err) {
      failure = err;
      if (err instanceof Http1DecodeError) events = err.events;
    }
    try {
      this.handle(side, events);
    } catch (err) {
      failure = err; // it happened earlier in the byte stream than the decoder's own error
    }
    if (failure === null || this.mode !== 'http') return;
    // A half-close mid-message is not a decoding problem: onClose fails the exchange.
    if (failure instanceof Http1DecodeError && failure.code === 'truncated') this.truncated.add(side);
    else this.decodeFailed(side, failure);
  }

  /** Work deferred until decoding is over, so the next tap's own errors are not taken for ours. */
  private runAfter(): void {
    const after = this.after;
    this.after = null;
    after?.();
  }

  private handle(from: Side, events: Http1Event[]): void {
    for (const event of events) {
      if (this.mode !== 'http') return;
      if (from === 'client') this.onRequestEvent(event);
      else this.onResponseEvent(event);
    }
  }

  private onRequestEvent(event: Http1Event): void {
    const ex = this.requesting;
    switch (event.type) {
      case 'request-head':
        this.startExchange(event.method, event.target, event.version, event.headers);
        return;
      case 'body':
        if (ex) this.onBody(ex, 'client', event.chunk);
        return;
      case 'trailers':
        if (ex) this.ctx.bus.emit({ kind: 'http.trailers', exchangeId: ex.id, side: 'client', headers: event.headers });
        return;
      case 'message-end':
        if (!ex) return;
        this.requesting = null;
        ex.requestEnded = true;
        ex.requestEnd = nowMs();
        this.maybeComplete(ex);
        // The server may have declined the switch before this request finished.
        if (ex.responseStarted && this.requests.awaitingSwitch) this.resumeRequests();
        return;
      default:
        return;
    }
  }

  private onResponseEvent(event: Http1Event): void {
    switch (event.type) {
      case 'response-head': {
        const ex = this.open.find((e) => !e.responseStarted);
        if (!ex) throw new Http1DecodeError('unsolicited-response', `status ${event.status} with no request waiting`);
        if (event.informational) return;
        ex.responseStarted = true;
        ex.responseStart = nowMs();
        this.responding = ex;
        this.ctx.bus.emit({
          kind: 'http.response',
          time: ex.responseStart,
          exchangeId: ex.id,
          protocol: protocolOf(event.version),
          status: event.status,
          statusText: event.statusText,
          headers: event.headers,
        });
        const switching = event.status === 101 || (ex.method === 'CONNECT' && event.status >= 200 && event.status < 300);
        if (switching) this.switching = { ex, responseHeaders: event.headers };
        else if (ex.maySwitch && ex.requestEnded && this.requests.awaitingSwitch) this.resumeRequests();
        return;
      }
      case 'body':
        if (this.responding) this.onBody(this.responding, 'server', event.chunk);
        return;
      case 'trailers':
        if (this.responding) {
          this.ctx.bus.emit({ kind: 'http.trailers', exchangeId: this.responding.id, side: 'server', headers: event.headers });
        }
        return;
      case 'message-end': {
        const ex = this.responding;
        if (!ex) return;
        this.responding = null;
        ex.responseEnded = true;
        this.maybeComplete(ex);
        return;
      }
      case 'switched':
        this.switchOver(event.rest);
        return;
      default:
        return;
    }
  }

  private startExchange(method: string, target: string, version: '1.0' | '1.1', headers: HeaderList): void {
    const ex: Exchange = {
      id: this.ctx.ids.nextExchangeId(),
      method,
      requestHeaders: headers,
      maySwitch: maySwitchProtocols(method, headers),
      requestEnded: false,
      responseStarted: false,
      responseEnded: false,
      requestBodySize: 0,
      responseBodySize: 0,
      requestEnd: null,
      responseStart: null,
    };
    this.open.push(ex);
    this.requesting = ex;
    this.responses.expect(method);
    const { url, scheme, host, port } = requestUrl(method, target, headers, this.ctx);
    this.ctx.bus.emit({
      kind: 'http.request',
      exchangeId: ex.id,
      connId: this.ctx.connId,
      streamId: null,
      protocol: protocolOf(version),
      method,
      target,
      url,
      scheme,
      host,
      port,
      headers,
    });
  }

  /** Counts every body byte; hands the bus at most bodyCaptureLimit bytes of it, uncopied. */
  private onBody(ex: Exchange, side: Side, chunk: Buffer): void {
    const before = side === 'client' ? ex.requestBodySize : ex.responseBodySize;
    if (side === 'client') ex.requestBodySize += chunk.length;
    else ex.responseBodySize += chunk.length;
    const room = this.ctx.bodyCaptureLimit - before;
    if (room <= 0 || chunk.length === 0 || !this.ctx.bus.hasListeners) return;
    const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.ctx.bus.emit({ kind: 'http.body', exchangeId: ex.id, side, chunk: piece });
  }

  private resumeRequests(): void {
    this.process('client', () => this.requests.resume());
  }

  private maybeComplete(ex: Exchange): void {
    if (!ex.requestEnded || !ex.responseEnded) return;
    this.open = this.open.filter((e) => e !== ex);
    this.ctx.bus.emit({
      kind: 'http.completed',
      exchangeId: ex.id,
      requestBodySize: ex.requestBodySize,
      responseBodySize: ex.responseBodySize,
      timings: timingsOf(ex),
    });
  }

  /** The response decoder saw the switch: complete the exchange, then hand over after decoding. */
  private switchOver(serverRest: Buffer): void {
    const { ex, responseHeaders } = this.switching!;
    const clientRest = this.requests.switchProtocols();
    if (this.open.includes(ex)) {
      ex.requestEnded = true;
      ex.requestEnd ??= nowMs();
      ex.responseEnded = true;
      this.maybeComplete(ex);
    }
    // Requests decoded after the switching one were never HTTP to the server.
    for (const other of this.open) {
      this.emitFailed(other, { reason: 'closed', message: 'the connection switched protocols before this request was answered' });
    }
    this.open = [];
    this.mode = 'opaque';
    const info = { exchangeId: ex.id, requestHeaders: ex.requestHeaders, responseHeaders };
    this.after = () => {
      const next = this.ctx.onUpgrade?.(info) ?? null;
      if (!next || this.mode !== 'opaque') return;
      this.mode = 'upgraded';
      this.next = next;
      if (clientRest.length > 0) next.onData('client', clientRest);
      if (serverRest.length > 0) next.onData('server', serverRest);
      for (const side of this.ended) next.onEnd(side);
    };
  }

  private decodeFailed(side: Side, err: unknown): void {
    const code = err instanceof Http1DecodeError ? err.code : 'internal';
    const message = err instanceof Error ? err.message : String(err);
    this.ctx.bus.emit({ kind: 'decode.failed', connId: this.ctx.connId, decoder: 'http1', side, code, message });
    for (const ex of this.open) this.emitFailed(ex, { reason: 'decode', message, code });
    this.open = [];
    this.mode = 'opaque';
  }

  private emitFailed(ex: Exchange, error: Failure): void {
    this.ctx.bus.emit({
      kind: 'http.failed',
      exchangeId: ex.id,
      error,
      requestBodySize: ex.requestBodySize,
      responseBodySize: ex.responseBodySize,
      timings: timingsOf(ex),
    });
  }

  /** Why an exchange still open when the connection closed without an error did not finish. */
  private closeFailure(ex: Exchange): Failure {
    const vanished = (likely: Side): string => {
      const side = this.ended.includes(likely) ? likely : this.ended[0];
      return side ? `the ${side} closed the connection` : 'the connection closed';
    };
    const truncatedCode = (side: Side): { code?: string } => (this.truncated.has(side) ? { code: 'truncated' } : {});
    if (!ex.requestEnded) {
      return { reason: 'aborted', message: `${vanished('client')} in the middle of the request`, ...truncatedCode('client') };
    }
    if (!ex.responseStarted) return { reason: 'closed', message: `${vanished('server')} before the response` };
    return { reason: 'aborted', message: `${vanished('server')} in the middle of the response`, ...truncatedCode('server') };
  }
}

function protocolOf(version: '1.0' | '1.1'): HttpProtocol {
  return version === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
}

function timingsOf(ex: Exchange) {
  return { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: ex.requestEnd, responseStart: ex.responseStart };
}

export interface RequestUrl {
  url: string;
  scheme: 'http' | 'https';
  host: string;
  port: number;
}

const defaultPort = (scheme: 'http' | 'https'): number => (scheme === 'https' ? 443 : 80);

/** Rebuilds the absolute URL of a request from its target, its Host header and the tunnel. */
export function requestUrl(
  method: string,
  target: string,
  headers: HeaderList,
  ctx: Pick<TapContext, 'scheme' | 'host' | 'port'>,
): RequestUrl {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) {
    try {
      const parsed = new URL(target);
      const scheme = parsed.protocol === 'https:' ? 'https' : parsed.protocol === 'http:' ? 'http' : ctx.scheme;
      const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
      return { url: target, scheme, host, port: parsed.port ? Number(parsed.port) : defaultPort(scheme) };
    } catch {
      // not a URL after all: fall through to the Host header
    }
  }
  const scheme = ctx.scheme;
  const hostHeader = headers.find(([name]) => name.toLowerCase() === 'host')?.[1];
  const { host, port } = (method === 'CONNECT' ? parseAuthority(target, scheme) : null) ??
    (hostHeader ? parseAuthority(hostHeader, scheme) : null) ?? { host: ctx.host, port: ctx.port };
  const origin = `${scheme}://${host.includes(':') ? `[${host}]` : host}${port === defaultPort(scheme) ? '' : `:${port}`}`;
  const path = target.startsWith('/') ? target : '';
  return { url: origin + path, scheme, host, port };
}

/** `host`, `host:port`, `[v6]` or `[v6]:port`; null when it is none of those. */
function parseAuthority(text: string, scheme: 'http' | 'https'): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/?#@[\]]+))(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return null;
  const port = m[3] === undefined || m[3] === '' ? defaultPort(scheme) : Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}
