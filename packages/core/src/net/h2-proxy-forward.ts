// A proxied request arriving as an HTTP/2 stream (`:method GET`, `:scheme http`, `:authority`,
// `:path`): routed like an absolute-form request on the plain proxy port, over the same pooled
// HTTP/1.1 upstream connections (UpstreamExchange), and captured as an exchange whose client leg
// is h2 and whose response carries the upstream's protocol.
import type http from 'node:http';
import type http2 from 'node:http2';
import type { HeaderList } from '../capture/events.js';
import type { ConnectionRecord } from './connection-registry.js';
import { answerStream, pseudoHeader } from './h2-proxy-answer.js';
import { H2ProxyRequest, H2ProxyResponse } from './h2-proxy-adapter.js';
import { headerValue } from './hop-by-hop.js';
import type { ProxyContext } from './proxy-context.js';
import type { RequestBodyFraming } from './request-head.js';
import { forwardUpstream } from './forward-handler.js';

/** Where a proxied stream goes, from its pseudo-headers. */
export interface H2RequestTarget {
  method: string;
  /** `:path` as sent (the exchange's target). */
  path: string;
  url: URL;
  scheme: 'http' | 'https';
  host: string;
  port: number;
}

/** Reads the target of a proxied stream; throws a message for a 400 when there is none. */
export function h2RequestTarget(headers: HeaderList): H2RequestTarget {
  const url = requestUrl(headers);
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  return {
    method: pseudoHeader(headers, ':method') ?? '',
    path: pseudoHeader(headers, ':path') ?? '',
    url,
    scheme,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80,
  };
}

/** `headers` as captured (credentials redacted); what goes upstream is built from them without hop-by-hop fields. */
export function handleH2Request(ctx: ProxyContext, record: ConnectionRecord, stream: http2.ServerHttp2Stream, headers: HeaderList): void {
  let target: H2RequestTarget;
  try {
    target = h2RequestTarget(headers);
  } catch (err) {
    answerStream(stream, 400, (err as Error).message);
    return;
  }
  const { method, path, url, scheme, host, port } = target;
  const exchangeId = ctx.ids.nextExchangeId();
  ctx.registry.exchangeStarted(record);
  ctx.bus.emit({ kind: 'http.request', exchangeId, connId: record.id, streamId: stream.id ?? null, protocol: 'h2', method, target: path, url: url.href, scheme, host, port, headers });

  const framing = bodyFraming(stream, headers);
  if (framing === 'none') stream.resume(); // nothing to read: let the stream end
  // forwardUpstream uses only what these adapters provide (see h2-proxy-adapter.ts).
  forwardUpstream(
    ctx,
    record,
    { exchangeId, method, url, headers: http1Fields(headers), framing, clientIsHttp10: false },
    new H2ProxyRequest(stream) as unknown as http.IncomingMessage,
    new H2ProxyResponse(stream, method === 'HEAD') as unknown as http.ServerResponse,
  );
}

/** `scheme://authority/path` from the pseudo-headers (Host stands in for a missing :authority). */
function requestUrl(headers: HeaderList): URL {
  const scheme = pseudoHeader(headers, ':scheme');
  const authority = pseudoHeader(headers, ':authority') ?? headerValue(headers, 'host');
  const path = pseudoHeader(headers, ':path');
  if (scheme !== 'http' && scheme !== 'https') throw new Error(`a proxied request needs :scheme http or https, got ${JSON.stringify(scheme ?? null)}`);
  if (!authority) throw new Error('a proxied request needs :authority (the host to forward to)');
  if (!path?.startsWith('/')) throw new Error(`a proxied request needs an origin-form :path, got ${JSON.stringify(path ?? null)}`);
  const url = new URL(`${scheme}://${authority}${path}`);
  if (!url.hostname || url.username || url.password) throw new Error(`not a host to forward to: "${authority.slice(0, 200)}"`);
  return url;
}

/**
 * An HTTP/2 body has no framing of its own: the HEADERS frame ended the stream (none), a
 * content-length gives the length, and anything else is sent upstream chunked.
 */
function bodyFraming(stream: http2.ServerHttp2Stream, headers: HeaderList): RequestBodyFraming {
  if (stream.endAfterHeaders) return 'none';
  const length = headerValue(headers, 'content-length');
  if (length === undefined) return 'chunked';
  return Number(length) > 0 ? 'length' : 'none';
}

/** The regular fields for an HTTP/1.1 head: no pseudo-headers, cookie fields joined (RFC 9113 §8.2.3). */
function http1Fields(headers: HeaderList): HeaderList {
  const out: HeaderList = [];
  let cookie: [string, string] | null = null;
  for (const [name, value] of headers) {
    if (name.startsWith(':')) continue;
    if (name === 'cookie') {
      if (cookie) cookie[1] += `; ${value}`;
      else out.push((cookie = [name, value]));
      continue;
    }
    out.push([name, value]);
  }
  return out;
}
