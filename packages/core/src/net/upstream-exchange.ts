// One absolute-form exchange carried upstream over a pooled connection: the request head and
// body written by us (body streamed with backpressure, chunked bodies re-chunked with their
// trailers), the response read by our own HTTP/1 decoder and written to the client's
// ServerResponse with backpressure. A pooled connection that dies before answering a request
// without a body is replaced once by a new one: the upstream closed it while it sat idle.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { ExchangeTimings, Failure, HeaderList } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import { Http1Decoder, Http1DecodeError, type Http1Event, type Http1Version } from '../decode/http1-decoder.js';
import type { ProxyContext } from './proxy-context.js';
import type { ConnectionOwner, UpstreamConnection, UpstreamTarget } from './upstream-connection.js';
import { connectionTokens, endToEndHeaders, pairsFromRaw } from './hop-by-hop.js';
import { chunkSizeLine, lastChunk, type RequestBodyFraming } from './request-head.js';
import { ExchangeBodyTap } from './exchange-body-tap.js';
import { describeUpstreamFailure, failureFromError, statusForFailure } from './failure.js';
import { upstreamProxyAnswerError } from './upstream-proxy.js';
import { formatAuthority } from './authority.js';

export interface UpstreamRequest {
  exchangeId: number;
  method: string;
  /** The whole request head, latin1. */
  head: string;
  framing: RequestBodyFraming;
  /** The client spoke HTTP/1.0: it gets no 1xx. */
  clientIsHttp10: boolean;
}

export class UpstreamExchange implements ConnectionOwner {
  readonly timings: ExchangeTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  readonly body: ExchangeBodyTap;
  private conn: UpstreamConnection | null = null;
  private reused = false;
  private retried = false;
  private decoder!: Http1Decoder;
  private responseBytes = false;
  /** When the bytes of the response head being read began to arrive. */
  private headStart: number | null = null;
  private responseDone = false;
  private requestDone = false;
  private bodyStarted = false;
  private reusable = true;
  private waitingForUpstreamDrain = false;
  private waitingForClientDrain = false;
  private settled = false;
  /** Fires when the upstream is silent too long before its response head (refreshed by writes). */
  private responseTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly target: UpstreamTarget,
    private readonly request: UpstreamRequest,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    /** Called once with the outcome: null when the response reached the client whole. */
    private readonly onSettled: (failure: Failure | null) => void,
  ) {
    this.body = new ExchangeBodyTap(ctx, request.exchangeId);
  }

  start(): void {
    // 'close' follows 'finish' when the response went out whole, and comes alone when it did not.
    this.res.once('close', () => this.onClientClose());
    this.connect(false);
  }

  // ---- connection ----------------------------------------------------------------------------

  private connect(fresh: boolean): void {
    const pool = this.ctx.upstreams;
    const pooled = fresh ? null : pool.acquire(this.target);
    this.reused = pooled !== null;
    this.decoder = new Http1Decoder('response', { maxHeaderBytes: this.ctx.config.maxHeaderBytes });
    this.decoder.expect(this.request.method);
    this.responseBytes = false;
    this.headStart = null;
    this.reusable = true;
    try {
      this.conn = pooled ?? pool.dial(this.target);
    } catch (err) {
      // net/tls refusing the options outright (never seen with what URL lets through)
      this.fail(failureFromError(err, 'bad-request'));
      return;
    }
    this.conn.attach(this);
  }

  onReady(): void {
    const conn = this.conn!;
    if (!this.reused) {
      this.timings.dnsMs = conn.dnsMs;
      this.timings.connectMs = conn.connectMs;
      this.timings.tlsMs = conn.tlsMs;
    }
    this.stopResponseTimer();
    this.responseTimer = setTimeout(() => this.onTimeout(), this.ctx.config.responseTimeoutMs);
    conn.socket.write(this.request.head, 'latin1');
    if (this.request.framing === 'none') {
      this.requestDone = true;
      this.timings.requestEnd = nowMs();
    } else if (!this.bodyStarted) {
      this.bodyStarted = true;
      this.req.on('data', (chunk: Buffer) => this.onRequestData(chunk));
      this.req.once('end', () => this.onRequestEnd());
    }
  }

  onDrain(): void {
    if (!this.waitingForUpstreamDrain) return;
    this.waitingForUpstreamDrain = false;
    this.req.resume();
  }

  private stopResponseTimer(): void {
    if (this.responseTimer) clearTimeout(this.responseTimer);
    this.responseTimer = null;
  }

  private onTimeout(): void {
    this.responseTimer = null;
    if (this.res.headersSent) return;
    const ms = this.ctx.config.responseTimeoutMs;
    this.fail({ reason: 'timeout', message: `no response within ${ms} ms`, code: 'ETIMEDOUT' });
  }

  onEnd(): void {
    this.reusable = false;
    if (this.responseDone) return;
    let events: Http1Event[];
    try {
      events = this.decoder.end();
    } catch (err) {
      if (!(err instanceof Http1DecodeError)) throw err;
      this.handle(err.events);
      return; // the close that follows reports it
    }
    this.handle(events);
  }

  onClose(failure: Failure, hadError: boolean): void {
    this.conn = null;
    if (this.responseDone || this.settled) return;
    const canRetry = this.reused && !this.retried && !this.responseBytes && this.request.framing === 'none';
    if (canRetry) {
      this.retried = true;
      this.connect(true);
      return;
    }
    if (!this.res.headersSent) {
      this.fail(failure);
      return;
    }
    // Mid-response, a reset says so; a plain close is an abort.
    this.fail(
      hadError && failure.reason === 'reset'
        ? { ...failure, message: `the upstream reset the connection mid-response (${failure.message})` }
        : { reason: 'aborted', message: 'the upstream closed the connection mid-response' },
    );
  }

  /** Gives the connection back when both messages are complete, or closes it. */
  private finishWithConnection(): void {
    const conn = this.conn;
    if (!conn || !this.responseDone || !this.requestDone) return;
    this.conn = null;
    if (this.reusable) this.ctx.upstreams.release(conn);
    else conn.destroy();
  }

  // ---- request body --------------------------------------------------------------------------

  private onRequestData(chunk: Buffer): void {
    this.body.onData('client', chunk);
    const conn = this.conn;
    if (!conn || this.responseDone) return; // nowhere to go: drop it, the client is answered
    const socket = conn.socket;
    let ok: boolean;
    if (this.request.framing === 'chunked') {
      if (chunk.length === 0) return;
      socket.cork();
      socket.write(chunkSizeLine(chunk.length), 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else {
      ok = socket.write(chunk);
    }
    this.responseTimer?.refresh(); // an upload in progress is not a silent upstream
    if (!ok) {
      this.waitingForUpstreamDrain = true;
      this.req.pause();
    }
  }

  private onRequestEnd(): void {
    this.timings.requestEnd = nowMs();
    const trailers = pairsFromRaw(this.req.rawTrailers);
    if (trailers.length > 0) this.ctx.bus.emit({ kind: 'http.trailers', exchangeId: this.request.exchangeId, side: 'client', headers: trailers });
    if (this.conn && !this.responseDone && this.request.framing === 'chunked') this.conn.socket.write(lastChunk(trailers), 'latin1');
    this.requestDone = true;
    this.finishWithConnection();
  }

  // ---- response ------------------------------------------------------------------------------

  onData(chunk: Buffer): void {
    this.responseBytes = true;
    // First byte of the final response head: interim 1xx heads do not count.
    if (this.headStart === null && !this.res.headersSent) this.headStart = nowMs();
    this.responseTimer?.refresh();
    let events: Http1Event[];
    try {
      events = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof Http1DecodeError)) throw err;
      this.handle(err.events);
      if (!this.responseDone) this.failDecode(err);
      else this.dropConnection(); // garbage after a complete response: only the connection is lost
      return;
    }
    this.handle(events);
  }

  private handle(events: Http1Event[]): void {
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      if (this.settled) return;
      if (this.responseDone) {
        this.reusable = false; // bytes after the response: nothing we asked for
        return;
      }
      switch (event.type) {
        case 'response-head':
          if (event.informational) {
            this.headStart = null;
            if (event.status === 100 && !this.request.clientIsHttp10) this.res.writeContinue();
          } else {
            this.onResponseHead(event.status, event.statusText, event.version, event.headers);
          }
          break;
        case 'body':
          if (events[i + 1]?.type === 'message-end' && !this.waitingForClientDrain) {
            // The usual small response: body and end in one call, one write to the client.
            this.body.onData('server', event.chunk);
            this.onResponseEnd(event.chunk);
            i++;
          } else {
            this.onResponseBody(event.chunk);
          }
          break;
        case 'trailers':
          this.ctx.bus.emit({ kind: 'http.trailers', exchangeId: this.request.exchangeId, side: 'server', headers: event.headers });
          try {
            this.res.addTrailers(event.headers as unknown as http.OutgoingHttpHeaders);
          } catch {
            // a trailer Node will not send: it stays in the capture only
          }
          break;
        case 'message-end':
          this.onResponseEnd();
          break;
        case 'switched':
          this.fail({ reason: 'decode', message: 'the upstream switched protocols without being asked to', code: 'unexpected-switch' });
          return;
        default:
          break;
      }
    }
  }

  private onResponseHead(status: number, statusText: string, version: Http1Version, headers: HeaderList): void {
    const conn = this.conn!;
    this.stopResponseTimer();
    if (status === 407 && this.target.via && this.target.scheme === 'http') {
      // The upstream proxy wants credentials we do not have: hopscope's problem, not the client's to answer.
      const { host, port } = this.target;
      const what = `${this.request.method} http://${formatAuthority(host, port)}`;
      this.fail(failureFromError(upstreamProxyAnswerError(this.target.via, status, statusText, what)));
      return;
    }
    this.timings.responseStart = this.headStart ?? nowMs();
    const tokens = connectionTokens(headers);
    this.reusable &&= !tokens.has('close') && (version === '1.1' || tokens.has('keep-alive')); // RFC 9112 §9.3
    this.ctx.bus.emit({
      kind: 'http.response',
      exchangeId: this.request.exchangeId,
      protocol: version === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      status,
      statusText,
      headers,
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
    });
    const { res } = this;
    res.sendDate = false; // the client sees the upstream's headers, not ours
    try {
      res.writeHead(status, statusText, endToEndHeaders(headers) as unknown as http.OutgoingHttpHeaders);
    } catch (err) {
      // Node refuses what the decoder let through (a status below 100): not a response to relay.
      this.fail({ reason: 'decode', message: `the upstream's response cannot be relayed: ${(err as Error).message}`, code: 'bad-status' });
    }
  }

  private onResponseBody(chunk: Buffer): void {
    this.body.onData('server', chunk);
    if (this.res.write(chunk) || this.waitingForClientDrain) return;
    this.waitingForClientDrain = true;
    const conn = this.conn;
    conn?.socket.pause();
    this.res.once('drain', () => {
      this.waitingForClientDrain = false;
      if (this.conn === conn) conn?.socket.resume();
    });
  }

  private onResponseEnd(lastBody?: Buffer): void {
    this.responseDone = true;
    // Anything still buffered after the message means the connection cannot be trusted again.
    try {
      this.decoder.end();
    } catch {
      this.reusable = false;
    }
    if (!this.requestDone) this.reusable = false; // the upstream answered before the body was all sent
    if (lastBody) this.res.end(lastBody);
    else this.res.end();
    if (!this.requestDone && this.conn) {
      const conn = this.conn;
      this.conn = null;
      conn.destroy();
      if (this.req.isPaused()) this.req.resume();
      return;
    }
    this.finishWithConnection();
  }

  // ---- outcomes ------------------------------------------------------------------------------

  private failDecode(err: Http1DecodeError): void {
    this.fail({ reason: 'decode', message: `the upstream's response is not valid HTTP/1.1: ${err.message}`, code: err.code });
  }

  private fail(failure: Failure): void {
    if (this.settled) return;
    this.dropConnection();
    this.settle(failure);
    const { res } = this;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const { host, port } = this.target;
    res.writeHead(statusForFailure(failure.reason), { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`hopscope: ${describeUpstreamFailure(failure, host, port)}\n`);
  }

  private onClientClose(): void {
    if (this.res.writableFinished) {
      this.settle(null);
      return;
    }
    // A request that broke mid-way (an invalid chunk size, say): Node's parser said why on the connection.
    const broken = this.ctx.registry.get(this.req.socket as Socket)?.error;
    if (broken && (broken.reason === 'bad-request' || broken.reason === 'headers-too-large')) this.settle(broken);
    else this.settle({ reason: 'aborted', message: 'the client closed the connection before the response was complete' });
    this.dropConnection();
  }

  private dropConnection(): void {
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.req.isPaused()) this.req.resume();
  }

  private settle(failure: Failure | null): void {
    if (this.settled) return;
    this.settled = true;
    this.stopResponseTimer();
    this.onSettled(failure);
  }
}
