// A WebSocket through the reverse proxy, whichever way the protocols fall: HTTP/1.1 Upgrade or
// RFC 8441 extended CONNECT on the client's leg, either of them on the upstream's. The handshake is
// translated (key and accept per HTTP/1.1 leg, 101 <-> 200, subprotocol and extensions carried both
// ways); then the frames, the same bytes on both legs, are relayed unchanged past the WebSocket tap,
// so messages appear in the capture under the handshake exchange. A refusal (403, 426, …) reaches
// the client as an ordinary response.
import type { Failure, Side } from '../capture/events.js';
import { nowMs } from '../capture/clock.js';
import type { ConnectionRecord } from '../net/connection-registry.js';
import { ExchangeBodyTap } from '../net/exchange-body-tap.js';
import { describeUpstreamFailure, ProxyError, statusForFailure } from '../net/failure.js';
import { relay } from '../net/relay.js';
import { guardTap, opaqueTap } from '../taps/tap.js';
import { tapAfterUpgrade } from '../taps/ws-tap.js';
import { isBodyless } from './client-leg.js';
import { openExchange, refuse, type ListenerView } from './reverse-dispatch.js';
import { settleExchange, upstreamAuthority, upstreamPath, type ReverseDeps } from './reverse-exchange.js';
import { formatUpstream, type ReverseRule } from './reverse-rules.js';
import type { UpstreamResponseHead } from './upstream-call.js';
import { RouteError, type UpstreamRoute } from './upstream-origins.js';
import { recordUpstreamLeg, type TlsLegInfo } from './upstream-tls.js';
import type { WsClient } from './ws-client.js';
import { isValidKey, newWebSocketKey } from './ws-handshake.js';
import { openH1WebSocket, openH2WebSocket, type WsUpstream, type WsUpstreamOutcome } from './ws-upstream.js';

export function bridgeWebSocket(deps: ReverseDeps, listener: ListenerView, record: ConnectionRecord, client: WsClient): void {
  const { exchangeId, rule } = openExchange(deps, listener, record, client.request);
  const refuseWith = (status: number, text: string, code: string) => refuse(deps, record, exchangeId, client.answerLeg(), status, text, code);
  if (!rule) return refuseWith(404, `no --reverse rule matches ${client.request.authority ?? '(no host)'}${client.request.target}`, 'no-route');
  if (client.request.streamId === null && !isValidKey(client.key ?? undefined)) {
    return refuseWith(400, 'the WebSocket handshake has no valid Sec-WebSocket-Key', 'bad-key');
  }
  new WsBridge(deps, record, exchangeId, client, rule).start();
}

class WsBridge {
  private readonly body: ExchangeBodyTap;
  private readonly timings = { dnsMs: null as number | null, connectMs: null as number | null, tlsMs: null as number | null, requestEnd: null as number | null, responseStart: null as number | null };
  private upstream: WsUpstream | null = null;
  private settled = false;
  private switched = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: ReverseDeps,
    private readonly record: ConnectionRecord,
    private readonly exchangeId: number,
    private readonly client: WsClient,
    private readonly rule: ReverseRule,
  ) {
    this.body = new ExchangeBodyTap(deps.ctx, exchangeId);
  }

  start(): void {
    this.client.onGone(() => {
      if (this.switched || this.settled) return;
      this.upstream?.abort(new ProxyError('aborted', 'the client went away during the WebSocket handshake'));
      this.settle({ reason: 'aborted', message: 'the client went away during the WebSocket handshake' });
    });
    const ms = this.deps.ctx.config.responseTimeoutMs;
    this.timer = setTimeout(() => this.upstream?.abort(new ProxyError('timeout', `no answer to the WebSocket handshake within ${ms} ms`, 'ETIMEDOUT')), ms);
    this.deps.origins.route(this.rule.upstream).then(
      (route) => this.open(route),
      (err: unknown) => {
        if (err instanceof RouteError && err.tls) recordUpstreamLeg(this.deps.ctx, this.record, err.tls);
        this.fail(err instanceof RouteError ? err.failure : { reason: 'internal', message: String(err) });
      },
    );
  }

  private open(route: UpstreamRoute): void {
    if (this.settled) {
      if (route.kind === 'h1') route.socket?.destroy();
      return;
    }
    const { client, rule, deps } = this;
    if (route.tls) recordUpstreamLeg(deps.ctx, this.record, route.tls);
    Object.assign(this.timings, { dnsMs: route.timings?.dnsMs ?? null, connectMs: route.timings?.connectMs ?? null, tlsMs: route.timings?.tlsMs ?? null });
    const request = {
      path: upstreamPath(client.request.target),
      authority: upstreamAuthority(deps, rule, client.request),
      clientHeaders: client.request.headers,
      // An HTTP/1.1 client's own key goes on to an HTTP/1.1 upstream; an HTTP/2 client has none.
      key: client.key ?? newWebSocketKey(),
      timings: this.timings,
      onUpstreamTls: (leg: TlsLegInfo) => recordUpstreamLeg(deps.ctx, this.record, leg),
    };
    this.upstream = route.kind === 'h1' ? openH1WebSocket(deps.ctx, deps.origins, route, rule.upstream, request) : openH2WebSocket(deps.origins, route, request);
    this.timings.requestEnd = nowMs();
    this.upstream.outcome.then(
      (outcome) => this.onOutcome(outcome),
      (err: unknown) => this.fail(err instanceof RouteError ? err.failure : { reason: 'internal', message: String(err) }),
    );
  }

  private onOutcome(outcome: WsUpstreamOutcome): void {
    this.stopTimer();
    if (this.settled) {
      if (outcome.kind === 'switched') outcome.duplex.destroy();
      else outcome.body.destroy();
      return;
    }
    this.timings.responseStart = nowMs();
    this.emitResponse(outcome.head);
    if (outcome.kind === 'switched') this.switch(outcome.head, outcome);
    else this.relayAnswer(outcome.head, outcome.body);
  }

  private switch(head: UpstreamResponseHead, outcome: Extract<WsUpstreamOutcome, { kind: 'switched' }>): void {
    const { ctx } = this.deps;
    const { record, client } = this;
    this.switched = true;
    const { duplex, pending, sent } = client.switchTo(head.headers);
    this.settle(null);
    // The client's leg is what the WebSocket tap reads: its request and the switch it was answered.
    const info = { exchangeId: this.exchangeId, requestHeaders: client.request.headers, responseHeaders: sent };
    const wsLimits = { messageCap: ctx.config.wsMessageCap, inflateRatio: ctx.config.wsInflateRatio };
    const tap = tapAfterUpgrade({ connId: record.id, bus: ctx.bus, bodyCaptureLimit: ctx.config.bodyCaptureLimit, wsLimits }, info);
    relay({
      client: duplex,
      server: outcome.duplex,
      tap: tap ? guardTap(tap, (err, side) => this.reportTapBug(err, side)) : opaqueTap,
      pendingFromServer: outcome.pending,
      pendingFromClient: pending,
      onClosed: (error) => {
        if (error) record.error ??= error;
      },
    });
  }

  /** The upstream answered without switching: that answer, body and all, is the client's. */
  private relayAnswer(head: UpstreamResponseHead, body: import('node:stream').Readable): void {
    const leg = this.client.answerLeg();
    try {
      leg.respond(head.status, head.statusText, head.headers, isBodyless('GET', head.status));
    } catch (err) {
      body.destroy();
      this.fail({ reason: 'decode', message: `the upstream's answer cannot be relayed: ${(err as Error).message}` });
      return;
    }
    leg.onClosed((complete) => this.settle(complete ? null : { reason: 'aborted', message: 'the client closed the connection before the response was complete' }));
    let waiting = false;
    body.on('data', (chunk: Buffer) => {
      this.body.onData('server', chunk);
      if (leg.write(chunk) || waiting) return;
      waiting = true;
      body.pause();
      leg.onDrain(() => {
        waiting = false;
        body.resume();
      });
    });
    body.once('end', () => {
      leg.finish([]);
      this.settle(null);
    });
    body.once('error', () => {});
    body.once('close', () => {
      if (!body.readableEnded) {
        leg.abort();
        this.settle({ reason: 'aborted', message: 'the upstream closed the connection mid-response' });
      }
    });
  }

  private emitResponse(head: UpstreamResponseHead): void {
    this.deps.ctx.bus.emit({ kind: 'http.response', exchangeId: this.exchangeId, ...head });
  }

  private fail(failure: Failure): void {
    this.stopTimer();
    if (this.settled) return;
    this.settle(failure);
    const { host, port } = this.rule.upstream;
    // The handshake's own failures name the upstream first; the network's say what the network did.
    const own = failure.code === 'no-extended-connect' || failure.code === 'bad-accept';
    const text = own ? `${formatUpstream(this.rule.upstream)} ${failure.message}` : describeUpstreamFailure(failure, host, port);
    this.client.answerLeg().answer(own ? 502 : statusForFailure(failure.reason), `hopscope: ${text}`);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private settle(failure: Failure | null): void {
    if (this.settled) return;
    this.settled = true;
    this.stopTimer();
    settleExchange(this.deps.ctx, this.record, this.exchangeId, failure, this.body, this.timings);
  }

  private reportTapBug(err: unknown, side: Side | null): void {
    this.deps.ctx.bus.emit({
      kind: 'decode.failed',
      connId: this.record.id,
      decoder: 'tap',
      side: side ?? 'client',
      code: 'internal',
      message: (err as Error)?.stack ?? String(err),
    });
  }
}
