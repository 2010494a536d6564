// The HTTP/2 stream assembler: turns decoded header lists, DATA and stream/connection ends into
// exchanges (`http.*` events), the same shape as HTTP/1.1 ones. One per connection, fed in wire
// order per side by the h2 tap. A CONNECT stream that got a 2xx (RFC 8441 WebSocket, or a tunnel)
// becomes a byte stream handed to the tap `onStreamUpgrade` returns.
import type { Failure, HeaderList, HttpProtocol, Side } from '../capture/events.js';
import { requestUrl } from './http1-tap.js';
import { guardTap, type Tap, type TapContext, type UpgradeInfo } from './tap.js';

/** A stream switched to another protocol: the 2xx answer to a CONNECT (extended or not). */
export interface StreamUpgradeInfo extends UpgradeInfo {
  streamId: number;
}

export interface H2TapContext extends TapContext {
  /** `h2` after TLS with ALPN h2, `h2c` for cleartext prior knowledge. */
  protocol: Extract<HttpProtocol, 'h2' | 'h2c'>;
  /**
   * Called once a CONNECT stream got its 2xx (after its exchange completed). The returned tap is fed
   * that stream's DATA payloads per side (`onData`), `onEnd(side)` on END_STREAM, and `onClose` once
   * when the stream ends: null when both sides ended it or the connection closed cleanly; a Failure
   * for RST_STREAM, a GOAWAY that dropped it, a transport error, or the h2 tap giving up decoding.
   * Returning null leaves the stream's bytes uncaptured (counted by the connection only).
   */
  onStreamUpgrade?: (info: StreamUpgradeInfo) => Tap | null;
}

interface Stream {
  id: number;
  exchangeId: number;
  method: string;
  requestHeaders: HeaderList;
  requestEnded: boolean;
  responseStarted: boolean;
  responseEnded: boolean;
  requestBodySize: number;
  responseBodySize: number;
  requestEnd: number | null;
  responseStart: number | null;
  /** A CONNECT that got a 2xx: the exchange is over, DATA belongs to `next`. */
  tunnel: boolean;
  next: Tap | null;
  tunnelEnded: Side[];
}

interface GoawaySeen {
  side: Side;
  lastStreamId: number;
  errorName: string;
}

/** Who opens a stream id: clients use odd ids, server pushes even ones. */
const initiator = (streamId: number): Side => (streamId % 2 === 1 ? 'client' : 'server');

function pseudo(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) {
    if (n === name) return v;
    if (!n.startsWith(':')) return undefined; // pseudo-headers come first
  }
  return undefined;
}

export class H2Streams {
  private readonly streams = new Map<number, Stream>();
  /** Highest stream id opened by each side: frames for lower unknown ids are for finished streams. */
  private readonly highest: Record<Side, number> = { client: 0, server: 0 };
  private goaway: GoawaySeen | null = null;

  constructor(private readonly ctx: H2TapContext) {}

  /** A complete header block on a stream from `side` (HEADERS, not PUSH_PROMISE). */
  onHeaders(side: Side, streamId: number, headers: HeaderList, endStream: boolean, time: number): void {
    const stream = this.streams.get(streamId);
    if (side === 'client') {
      if (!stream) {
        if (initiator(streamId) === 'client' && streamId > this.highest.client) this.openRequest(streamId, headers, endStream, time);
        return;
      }
      if (stream.tunnel || stream.requestEnded) return;
      this.ctx.bus.emit({ kind: 'http.trailers', time, exchangeId: stream.exchangeId, side: 'client', headers });
      if (endStream) this.endRequest(stream, time);
      return;
    }
    if (!stream || stream.tunnel) return;
    if (!stream.responseStarted) {
      const status = Number(pseudo(headers, ':status'));
      if (status >= 100 && status < 200 && status !== 101) return; // informational
      stream.responseStarted = true;
      stream.responseStart = time;
      this.ctx.bus.emit({
        kind: 'http.response',
        time,
        exchangeId: stream.exchangeId,
        protocol: this.ctx.protocol,
        status: Number.isInteger(status) ? status : 0,
        statusText: '',
        headers,
      });
      if (stream.method === 'CONNECT' && status >= 200 && status < 300 && !endStream) {
        this.startTunnel(stream, headers, time);
        return;
      }
    } else {
      this.ctx.bus.emit({ kind: 'http.trailers', time, exchangeId: stream.exchangeId, side: 'server', headers });
    }
    if (endStream) this.endResponse(stream);
  }

  /** A PUSH_PROMISE on `streamId` promising `promisedId`: the promise is the pushed request. */
  onPushPromise(streamId: number, promisedId: number, headers: HeaderList, time: number): void {
    if (this.streams.has(promisedId) || promisedId <= this.highest.server) return;
    const parent = this.streams.get(streamId);
    const pushed = this.openRequest(promisedId, headers, true, time);
    this.ctx.bus.emit({
      kind: 'h2.push',
      time,
      connId: this.ctx.connId,
      exchangeId: pushed.exchangeId,
      promisedStreamId: promisedId,
      streamId,
      parentExchangeId: parent?.exchangeId ?? null,
    });
  }

  onData(side: Side, streamId: number, data: Buffer, endStream: boolean, time: number): void {
    const stream = this.streams.get(streamId);
    if (!stream) return;
    if (stream.tunnel) {
      if (data.length > 0) stream.next?.onData(side, data);
      if (endStream) this.endTunnelSide(stream, side);
      return;
    }
    if (side === 'client') {
      if (stream.requestEnded) return;
      this.body(stream, 'client', data);
      if (endStream) this.endRequest(stream, time);
    } else {
      if (!stream.responseStarted || stream.responseEnded) return;
      this.body(stream, 'server', data);
      if (endStream) this.endResponse(stream);
    }
  }

  onReset(side: Side, streamId: number, errorName: string): void {
    const stream = this.streams.get(streamId);
    if (!stream) return;
    this.streams.delete(streamId);
    const failure: Failure = { reason: 'reset', message: `the ${side} reset stream ${streamId} (${errorName})`, code: errorName };
    if (stream.tunnel) {
      stream.next?.onClose(failure);
    } else if (errorName === 'NO_ERROR' && stream.responseEnded) {
      // RFC 9113 §8.1: a server may stop an unneeded request body once its response is complete.
      this.emitCompleted(stream);
    } else {
      this.emitFailed(stream, failure);
    }
  }

  /** Streams the receiver opened above the last one the sender processed were never processed. */
  onGoaway(side: Side, lastStreamId: number, errorName: string): void {
    this.goaway = { side, lastStreamId, errorName };
    for (const stream of [...this.streams.values()]) {
      if (stream.id <= lastStreamId || initiator(stream.id) === side) continue;
      this.streams.delete(stream.id);
      const failure: Failure = {
        reason: 'closed',
        message: `the ${side} sent GOAWAY (${errorName}, last stream ${lastStreamId}) without processing stream ${stream.id}`,
        code: errorName,
      };
      if (stream.tunnel) stream.next?.onClose(failure);
      else this.emitFailed(stream, failure);
    }
  }

  /** Fails every open stream: the connection closed (`error` from the transport) or decoding stopped. */
  closeAll(error: Failure | null, ended: readonly Side[]): void {
    const open = [...this.streams.values()];
    this.streams.clear();
    for (const stream of open) {
      const failure = error ?? this.closeFailure(stream, ended);
      if (stream.tunnel) stream.next?.onClose(error);
      else this.emitFailed(stream, failure);
    }
  }

  private openRequest(streamId: number, headers: HeaderList, endStream: boolean, time: number): Stream {
    const side = initiator(streamId);
    this.highest[side] = Math.max(this.highest[side], streamId);
    const method = pseudo(headers, ':method') ?? '';
    const protocol = pseudo(headers, ':protocol');
    const authority = pseudo(headers, ':authority') ?? headers.find(([n]) => n === 'host')?.[1];
    const plainConnect = method === 'CONNECT' && protocol === undefined;
    const target = (plainConnect ? authority : pseudo(headers, ':path')) ?? '';
    const schemeText = pseudo(headers, ':scheme');
    const scheme = schemeText === 'http' || schemeText === 'https' ? schemeText : this.ctx.scheme;
    const { url, host, port } = requestUrl(plainConnect ? 'CONNECT' : method, target, authority ? [['host', authority]] : [], {
      scheme,
      host: this.ctx.host,
      port: this.ctx.port,
    });
    const stream: Stream = {
      id: streamId,
      exchangeId: this.ctx.ids.nextExchangeId(),
      method,
      requestHeaders: headers,
      requestEnded: false,
      responseStarted: false,
      responseEnded: false,
      requestBodySize: 0,
      responseBodySize: 0,
      requestEnd: null,
      responseStart: null,
      tunnel: false,
      next: null,
      tunnelEnded: [],
    };
    this.streams.set(streamId, stream);
    this.ctx.bus.emit({
      kind: 'http.request',
      time,
      exchangeId: stream.exchangeId,
      connId: this.ctx.connId,
      streamId,
      protocol: this.ctx.protocol,
      method,
      target,
      url,
      scheme,
      host,
      port,
      headers,
    });
    if (endStream) this.endRequest(stream, time);
    return stream;
  }

  /** Counts every body byte; hands the bus at most bodyCaptureLimit bytes of it, uncopied. */
  private body(stream: Stream, side: Side, data: Buffer): void {
    const before = side === 'client' ? stream.requestBodySize : stream.responseBodySize;
    if (side === 'client') stream.requestBodySize += data.length;
    else stream.responseBodySize += data.length;
    const room = this.ctx.bodyCaptureLimit - before;
    if (room <= 0 || data.length === 0 || !this.ctx.bus.hasListeners) return;
    const chunk = data.length <= room ? data : data.subarray(0, room);
    this.ctx.bus.emit({ kind: 'http.body', exchangeId: stream.exchangeId, side, chunk });
  }

  private endRequest(stream: Stream, time: number): void {
    stream.requestEnded = true;
    stream.requestEnd = time;
    this.maybeComplete(stream);
  }

  private endResponse(stream: Stream): void {
    stream.responseEnded = true;
    this.maybeComplete(stream);
  }

  private maybeComplete(stream: Stream): void {
    if (!stream.requestEnded || !stream.responseEnded) return;
    this.streams.delete(stream.id);
    this.emitCompleted(stream);
  }

  /** The CONNECT exchange is complete at its 2xx, like an HTTP/1 101; the stream carries on as bytes. */
  private startTunnel(stream: Stream, responseHeaders: HeaderList, time: number): void {
    stream.tunnel = true;
    stream.requestEnd ??= time;
    this.emitCompleted(stream);
    const info: StreamUpgradeInfo = {
      exchangeId: stream.exchangeId,
      streamId: stream.id,
      requestHeaders: stream.requestHeaders,
      responseHeaders,
    };
    let next: Tap | null = null;
    try {
      next = this.ctx.onStreamUpgrade?.(info) ?? null;
    } catch (err) {
      this.reportTapBug(err, 'server');
    }
    if (next) stream.next = guardTap(next, (err, side) => this.reportTapBug(err, side ?? 'server'));
  }

  private endTunnelSide(stream: Stream, side: Side): void {
    if (stream.tunnelEnded.includes(side)) return;
    stream.tunnelEnded.push(side);
    stream.next?.onEnd(side);
    if (stream.tunnelEnded.length === 2) {
      this.streams.delete(stream.id);
      stream.next?.onClose(null);
    }
  }

  private closeFailure(stream: Stream, ended: readonly Side[]): Failure {
    if (this.goaway) {
      const { side, lastStreamId, errorName } = this.goaway;
      return {
        reason: errorName === 'NO_ERROR' ? 'closed' : 'reset',
        message: `the connection closed after the ${side} sent GOAWAY (${errorName}, last stream ${lastStreamId})`,
        code: errorName,
      };
    }
    // An HTTP/2 peer never half-closes the connection as part of the protocol: the first side to end it did.
    const who = ended[0] ? `the ${ended[0]} closed the connection` : 'the connection closed';
    if (!stream.requestEnded) return { reason: 'aborted', message: `${who} in the middle of the request` };
    if (!stream.responseStarted) return { reason: 'closed', message: `${who} before the response` };
    return { reason: 'aborted', message: `${who} in the middle of the response` };
  }

  private emitCompleted(stream: Stream): void {
    this.ctx.bus.emit({
      kind: 'http.completed',
      exchangeId: stream.exchangeId,
      requestBodySize: stream.requestBodySize,
      responseBodySize: stream.responseBodySize,
      timings: timingsOf(stream),
    });
  }

  private emitFailed(stream: Stream, error: Failure): void {
    this.ctx.bus.emit({
      kind: 'http.failed',
      exchangeId: stream.exchangeId,
      error,
      requestBodySize: stream.requestBodySize,
      responseBodySize: stream.responseBodySize,
      timings: timingsOf(stream),
    });
  }

  private reportTapBug(err: unknown, side: Side): void {
    this.ctx.bus.emit({
      kind: 'decode.failed',
      connId: this.ctx.connId,
      decoder: 'tap',
      side,
      code: 'internal',
      message: (err as Error)?.stack ?? String(err),
    });
  }
}

function timingsOf(stream: Stream) {
  return { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: stream.requestEnd, responseStart: stream.responseStart };
}
