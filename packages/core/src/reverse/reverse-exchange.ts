// One reverse-proxied exchange: the client's request (HTTP/1.x or HTTP/2) carried to the upstream
// its rule names (HTTP/1.1 or HTTP/2), headers translated, bodies streamed both ways with
// backpressure (never buffered whole), trailers and 1xx carried across, and the same capture events
// as the forward path: http.request with the client's protocol, http.response with the upstream's.
import type { ExchangeTimings, Failure, HeaderList } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import type { ConnectionRecord } from '../net/connection-registry.js';
import { ExchangeBodyTap } from '../net/exchange-body-tap.js';
import { describeUpstreamFailure, statusForFailure } from '../net/failure.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { isBodyless, type ClientLeg } from './client-leg.js';
import { startH1Call } from './h1-call.js';
import { startH2Call } from './h2-call.js';
import { h1RequestHeaders, h2RequestHeaders } from './header-translation.js';
import type { ReverseConfig, ReverseRule } from './reverse-rules.js';
import type { UpstreamCall, UpstreamCallEvents, UpstreamResponseHead } from './upstream-call.js';
import { RouteError, type UpstreamOrigins, type UpstreamRoute } from './upstream-origins.js';
import { recordUpstreamLeg, type TlsLegInfo } from './upstream-tls.js';

export interface ReverseDeps {
  ctx: ProxyContext;
  config: ReverseConfig;
  origins: UpstreamOrigins;
}

/** The path to send upstream: the client's target as is (absolute-form reduced to its path). */
export function upstreamPath(target: string): string {
  if (target.startsWith('/') || target === '*') return target;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}

/** Host / :authority for the upstream: the client's (`keep`) or the upstream's own. */
export function upstreamAuthority(deps: ReverseDeps, rule: ReverseRule, leg: Pick<ClientLeg, 'authority'>): string {
  return deps.config.hostHeader === 'keep' && leg.authority ? leg.authority : rule.upstream.authority;
}

export class ReverseExchange implements UpstreamCallEvents {
  readonly timings: ExchangeTimings = { dnsMs: null, connectMs: null, tlsMs: null, requestEnd: null, responseStart: null };
  private readonly body: ExchangeBodyTap;
  private call: UpstreamCall | null = null;
  private settled = false;
  private responseDone = false;
  private waitingForUpstream = false;
  private waitingForClient = false;
  private responseTimer: NodeJS.Timeout | null = null;
  private callAborted = false;
  private requestEnded = false;
  /** A bodiless request refused by an HTTP/2 upstream was sent again once (RFC 9113 §8.7). */
  private retried = false;

  constructor(
    private readonly deps: ReverseDeps,
    private readonly record: ConnectionRecord,
    private readonly exchangeId: number,
    private readonly leg: ClientLeg,
    private readonly rule: ReverseRule,
  ) {
    this.body = new ExchangeBodyTap(deps.ctx, exchangeId);
  }

  start(): void {
    this.leg.onClosed((complete) => this.onClientClosed(complete));
    this.dispatch();
  }

  private dispatch(): void {
    this.deps.origins.route(this.rule.upstream).then(
      (route) => this.begin(route),
      (err: unknown) => {
        if (err instanceof RouteError && err.tls) recordUpstreamLeg(this.deps.ctx, this.record, err.tls);
        this.fail(err instanceof RouteError ? err.failure : { reason: 'internal', message: String((err as Error)?.stack ?? err) });
      },
    );
  }

  private begin(route: UpstreamRoute): void {
    if (this.settled) {
      if (route.kind === 'h1') route.socket?.destroy();
      return;
    }
    if (route.tls) this.upstreamTls(route.tls);
    const { leg, rule } = this;
    const authority = upstreamAuthority(this.deps, rule, leg);
    const path = upstreamPath(leg.target);
    try {
      this.call =
        route.kind === 'h1'
          ? startH1Call(this.deps.ctx, route, rule.upstream, { method: leg.method, path, headers: h1RequestHeaders(leg.headers, { authority, hasBody: leg.hasBody }) }, this)
          : startH2Call(route, h2RequestHeaders(leg.headers, { method: leg.method, path, scheme: route.protocol === 'h2' ? 'https' : 'http', authority }), leg.hasBody, this);
    } catch (err) {
      // Node refused something of the request (a header value HTTP/2 cannot carry, …).
      this.fail({ reason: 'bad-request', message: `the request cannot be sent upstream: ${(err as Error).message}`, code: (err as NodeJS.ErrnoException).code });
      return;
    }
    Object.assign(this.timings, this.call.timings);
    this.responseTimer = setTimeout(() => this.onTimeout(), this.deps.ctx.config.responseTimeoutMs);
    this.pumpRequest(this.call);
  }

  private pumpRequest(call: UpstreamCall): void {
    const { leg } = this;
    if (!leg.hasBody) {
      this.requestEnded = true;
      this.timings.requestEnd = nowMs();
      call.end([]);
      return;
    }
    const body = leg.body;
    body.on('data', (chunk: Buffer) => {
      this.body.onData('client', chunk);
      if (this.callAborted) return; // nowhere to go: counted, then dropped
      this.responseTimer?.refresh(); // an upload in progress is not a silent upstream
      if (call.write(chunk) || this.waitingForUpstream) return;
      this.waitingForUpstream = true;
      body.pause();
      call.onDrain(() => {
        this.waitingForUpstream = false;
        body.resume();
      });
    });
    body.once('end', () => {
      this.requestEnded = true;
      this.timings.requestEnd = nowMs();
      const trailers = leg.requestTrailers();
      if (trailers.length > 0) this.deps.ctx.bus.emit({ kind: 'http.trailers', exchangeId: this.exchangeId, side: 'client', headers: trailers });
      if (!this.callAborted) call.end(trailers);
    });
  }

  // ---- upstream events -------------------------------------------------------------------------

  informational(status: number, headers: HeaderList): void {
    if (!this.settled) this.leg.informational(status, headers);
  }

  response(head: UpstreamResponseHead): void {
    if (this.settled) return;
    this.stopTimer();
    this.timings.responseStart = nowMs();
    this.deps.ctx.bus.emit({ kind: 'http.response', exchangeId: this.exchangeId, ...head });
    try {
      this.leg.respond(head.status, head.statusText, head.headers, isBodyless(this.leg.method, head.status));
    } catch (err) {
      this.abortCall();
      this.fail({ reason: 'decode', message: `the upstream's response cannot be relayed: ${(err as Error).message}`, code: (err as NodeJS.ErrnoException).code });
    }
  }

  data(chunk: Buffer): void {
    if (this.settled) return;
    this.body.onData('server', chunk);
    if (this.leg.write(chunk) || this.waitingForClient) return;
    this.waitingForClient = true;
    this.call?.pause();
    this.leg.onDrain(() => {
      this.waitingForClient = false;
      this.call?.resume();
    });
  }

  end(trailers: HeaderList): void {
    if (this.settled) return;
    this.responseDone = true;
    if (trailers.length > 0) this.deps.ctx.bus.emit({ kind: 'http.trailers', exchangeId: this.exchangeId, side: 'server', headers: trailers });
    this.leg.finish(trailers);
    // Answered before the whole request body went up: the upstream may never read the rest, so the
    // call ends here (its HTTP/1.1 connection is not reused) and the rest of the body is dropped.
    if (!this.requestEnded) this.abortCall();
  }

  error(failure: Failure): void {
    if (this.mayRetry(failure)) {
      // REFUSED_STREAM: the upstream did not process it, so it is sent again (nghttp2 ends the
      // streams a GOAWAY left unprocessed the same way; the next route then dials anew).
      this.retried = true;
      this.stopTimer();
      this.call = null;
      this.dispatch();
      return;
    }
    this.callAborted = true; // the call is over: nothing more goes into it
    this.fail(failure);
  }

  /** Only once, only before any response, and only without a body: a body already read cannot be sent again. */
  private mayRetry(failure: Failure): boolean {
    return failure.code === 'REFUSED_STREAM' && !this.retried && !this.settled && !this.leg.hasBody && !this.leg.headersSent;
  }

  upstreamTls(leg: TlsLegInfo): void {
    recordUpstreamLeg(this.deps.ctx, this.record, leg);
  }

  // ---- outcomes --------------------------------------------------------------------------------

  private onTimeout(): void {
    this.responseTimer = null;
    this.abortCall();
    const ms = this.deps.ctx.config.responseTimeoutMs;
    this.fail({ reason: 'timeout', message: `no response within ${ms} ms`, code: 'ETIMEDOUT' });
  }

  private onClientClosed(complete: boolean): void {
    if (complete && this.responseDone) return this.settle(null);
    this.abortCall();
    this.settle({ reason: 'aborted', message: 'the client closed the connection before the response was complete' });
  }

  /** Answers the client with the reason when it has no response head yet, else cuts its response off. */
  private fail(failure: Failure): void {
    if (this.settled) return;
    this.settle(failure);
    const { leg } = this;
    if (leg.headersSent) {
      leg.abort();
      return;
    }
    const { host, port } = this.rule.upstream;
    leg.answer(statusForFailure(failure.reason), `hopscope: ${describeUpstreamFailure(failure, host, port)}`);
    leg.body.resume(); // let the rest of the request body go, so the connection can carry on
  }

  private abortCall(): void {
    this.callAborted = true;
    this.call?.abort();
    if (this.waitingForUpstream) {
      this.waitingForUpstream = false;
      this.leg.body.resume();
    }
  }

  private stopTimer(): void {
    if (this.responseTimer) clearTimeout(this.responseTimer);
    this.responseTimer = null;
  }

  private settle(failure: Failure | null): void {
    if (this.settled) return;
    this.settled = true;
    this.stopTimer();
    Object.assign(this.timings, pickDefined(this.call?.timings));
    settleExchange(this.deps.ctx, this.record, this.exchangeId, failure, this.body, this.timings);
  }
}

/** Ends the exchange in the capture and in the registry's in-flight count. */
export function settleExchange(
  ctx: ProxyContext,
  record: ConnectionRecord,
  exchangeId: number,
  failure: Failure | null,
  body: Pick<ExchangeBodyTap, 'requestSize' | 'responseSize'>,
  timings: ExchangeTimings,
): void {
  ctx.registry.exchangeEnded(record);
  const sizes = { requestBodySize: body.requestSize, responseBodySize: body.responseSize };
  if (failure) ctx.bus.emit({ kind: 'http.failed', exchangeId, error: failure, ...sizes, timings });
  else ctx.bus.emit({ kind: 'http.completed', exchangeId, ...sizes, timings });
}

function pickDefined(timings: UpstreamCall['timings'] | undefined): Partial<ExchangeTimings> {
  if (!timings) return {};
  return Object.fromEntries(Object.entries(timings).filter(([, v]) => v !== null));
}
