// Every request on the reverse listener comes here, whatever the client's protocol: it is recorded
// (http.request with the client's protocol), matched against the --reverse rules, and handed to the
// exchange that carries it upstream. A request no rule matches gets a 404 naming the rules there are.
import type { ConnectionRecord } from '../net/connection-registry.js';
import { ExchangeBodyTap } from '../net/exchange-body-tap.js';
import { requestUrl } from '../taps/http1-tap.js';
import type { ClientLeg } from './client-leg.js';
import { ReverseExchange, settleExchange, upstreamPath, type ReverseDeps } from './reverse-exchange.js';
import { describeRules, matchReverseRule, requestPath, type ReverseRule, type ReverseUpstream } from './reverse-rules.js';

export interface ListenerView {
  scheme: 'http' | 'https';
  /** The listener's own address, for URLs of requests without Host. */
  host: string;
  port: number;
}

/** Records the request and starts its exchange; returns the rule and exchange id for the caller's own handling. */
export function openExchange(
  deps: ReverseDeps,
  listener: ListenerView,
  record: ConnectionRecord,
  leg: Pick<ClientLeg, 'protocol' | 'streamId' | 'method' | 'target' | 'authority' | 'headers'>,
): { exchangeId: number; rule: ReverseRule | null } {
  const { ctx } = deps;
  const exchangeId = ctx.ids.nextExchangeId();
  const { url, scheme, host, port } = requestUrl(leg.method, leg.target, leg.authority ? [['host', leg.authority]] : [], listener);
  const rule = matchReverseRule(deps.config.rules, leg.authority, requestPath(leg.target));
  ctx.registry.exchangeStarted(record);
  ctx.bus.emit({
    kind: 'http.request',
    exchangeId,
    connId: record.id,
    streamId: leg.streamId,
    protocol: leg.protocol,
    method: leg.method,
    target: leg.target,
    url,
    scheme,
    host,
    port,
    headers: leg.headers,
    ...(rule ? { upstreamUrl: upstreamUrlOf(rule.upstream, leg.target) } : {}),
  });
  return { exchangeId, rule };
}

/** An ordinary request (not a WebSocket handshake) on the reverse listener. */
export function dispatchRequest(deps: ReverseDeps, listener: ListenerView, record: ConnectionRecord, leg: ClientLeg): void {
  const { exchangeId, rule } = openExchange(deps, listener, record, leg);
  if (leg.method === 'CONNECT') {
    return refuse(deps, record, exchangeId, leg, 405, 'the reverse proxy does not open CONNECT tunnels (use the proxy port for that)', 'connect');
  }
  if (!rule) {
    const text = `no --reverse rule matches ${leg.authority ?? '(no host)'}${requestPath(leg.target)}; the rules are:\n${describeRules(deps.config.rules)}`;
    return refuse(deps, record, exchangeId, leg, 404, text, 'no-route');
  }
  new ReverseExchange(deps, record, exchangeId, leg, rule).start();
}

/** Answers with hopscope's own plain-text status; the exchange fails with `bad-request`. */
export function refuse(deps: ReverseDeps, record: ConnectionRecord, exchangeId: number, leg: ClientLeg, status: number, text: string, code: string): void {
  const body = new ExchangeBodyTap(deps.ctx, exchangeId);
  leg.body.on('data', (chunk: Buffer) => body.onData('client', chunk)); // read and dropped
  leg.answer(status, `hopscope: ${text}`);
  settleExchange(deps.ctx, record, exchangeId, { reason: 'bad-request', message: text.split('\n')[0], code }, body, {
    dnsMs: null,
    connectMs: null,
    tlsMs: null,
    requestEnd: null,
    responseStart: null,
  });
}

/** The URL the request goes to upstream, for the capture (an h2c:// upstream is shown as http://). */
function upstreamUrlOf(upstream: ReverseUpstream, target: string): string {
  return `${upstream.scheme === 'https' ? 'https' : 'http'}://${upstream.authority}${upstreamPath(target)}`;
}
