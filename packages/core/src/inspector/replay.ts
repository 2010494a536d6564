// Resend: a captured request goes again through hopscope's own proxy port, so the new exchange is
// captured like any other (HTTPS is intercepted with the same CA, which this client trusts). The
// request goes as it was captured, or as the user edited it (replay-request.ts): method, target,
// headers in their order and case, the body and trailers. HTTP/1.1 requests are written byte for
// byte here (Node's client would add a Connection header of its own) and their responses read with
// hopscope's own decoder. An HTTP/2 request is sent over HTTP/2 when the upstream still speaks it
// (ALPN through the interception), else as HTTP/1.1 with `Host` from `:authority`.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { CaptureBus } from '../capture/bus.js';
import type { HeaderList } from '../capture/events.js';
import { requestTunnel } from '../net/upstream-proxy-connect.js';
import { upstreamProxyAuthorization, type UpstreamProxy } from '../net/upstream-proxy.js';
import type { ExchangeDetail } from '../store/row-types.js';
import type { ReplayEdits } from './protocol.js';
import type { ReplayRequest } from './replay-request.js';
import { Http1Decoder } from '../decode/http1-decoder.js';
import { chunkSizeLine, lastChunk, requestFraming } from '../net/request-head.js';

export interface ReplayContext {
  /** hopscope's proxy port, with the credentials clients must present when --proxy-auth is on. */
  proxy: UpstreamProxy;
  /** The root CA's certificate (PEM file): the replaying client trusts it, as users' clients do. */
  caPath: string;
  bus: CaptureBus;
  timeoutMs: number;
}

export interface ReplayOutcome {
  /** The new exchange in the capture (null if hopscope recorded none, e.g. it refused the CONNECT). */
  exchangeId: number | null;
  status: number;
}

/** Why an exchange cannot be sent again (with these edits), or null when it can. */
export function replayRefusal(detail: ExchangeDetail, isWebSocket: boolean, edits: ReplayEdits = {}): string | null {
  if (isWebSocket || detail.status === 101) return 'A WebSocket cannot be sent again: its messages were a conversation, not one request.';
  if (detail.method === 'CONNECT') return 'A CONNECT opens a tunnel; resend the requests that went through it instead.';
  if (detail.protocol === 'SOCKS5') return 'A SOCKS5 CONNECT opens a tunnel; resend the requests that went through it instead.';
  const body = detail.requestBody;
  const newBody = edits.body !== undefined || edits.bodyBase64 !== undefined;
  if (body?.truncated && !newBody) return `Only ${body.data.length} of ${body.size} bytes of the request body were stored (the body cap): it cannot be sent again whole.`;
  return null;
}

export async function replayExchange(ctx: ReplayContext, request: ReplayRequest): Promise<ReplayOutcome> {
  const watch = watchCapture(ctx.bus);
  const sockets: Array<{ destroy(): void }> = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const sent = send(ctx, request, (socket) => sockets.push(socket));
    sent.catch(() => {}); // after a timeout it fails as its sockets are destroyed: nobody waits for it then
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no whole response within ${ctx.timeoutMs} ms`)), ctx.timeoutMs);
    });
    const { status, localPort } = await Promise.race([sent, timeout]);
    return { exchangeId: watch.exchangeOf(localPort), status };
  } finally {
    clearTimeout(timer);
    watch.stop();
    for (const socket of sockets) socket.destroy();
  }
}

interface Sent {
  status: number;
  /** The port of the replaying client's connection to the proxy: it names the new exchange. */
  localPort: number;
}

async function send(ctx: ReplayContext, request: ReplayRequest, track: (s: { destroy(): void }) => void): Promise<Sent> {
  if (request.scheme === 'http') {
    const socket = net.connect(ctx.proxy.port, ctx.proxy.host);
    track(socket);
    await once(socket, 'connect');
    const status = await h1Request(socket, request, request.url, proxyAuthorization(ctx));
    return { status, localPort: socket.localPort! };
  }
  const tunnel = net.connect(ctx.proxy.port, ctx.proxy.host);
  track(tunnel);
  await once(tunnel, 'connect');
  await requestTunnel(tunnel, ctx.proxy, request.host, request.port, { maxHeadBytes: 64 * 1024, timeoutMs: 0 });
  const secure = tls.connect({
    socket: tunnel,
    ca: await readFile(ctx.caPath, 'utf8'),
    ...(net.isIP(request.host) ? {} : { servername: request.host }),
    ALPNProtocols: request.http2 ? ['h2', 'http/1.1'] : ['http/1.1'],
  });
  track(secure);
  await once(secure, 'secureConnect');
  const status = secure.alpnProtocol === 'h2' ? await h2Request(secure, request) : await h1Request(secure, request, request.target, []);
  return { status, localPort: tunnel.localPort! };
}

/** The header list for HTTP/1.1: `Host` from the authority when the request had none (HTTP/2), the redacted proxy credentials dropped. */
function h1Headers(request: ReplayRequest): HeaderList {
  const out: HeaderList = [];
  if (!request.headers.some(([n]) => n.toLowerCase() === 'host')) out.push(['Host', request.authority]);
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase();
    if (lower === 'proxy-authorization' || lower === 'proxy-connection') continue;
    out.push([name, value]);
  }
  return out;
}

function proxyAuthorization(ctx: ReplayContext): HeaderList {
  const value = upstreamProxyAuthorization(ctx.proxy);
  return value ? [['Proxy-Authorization', value]] : [];
}

/** Writes one HTTP/1.1 request on `socket` as given and reads the whole response; resolves with its status. */
function h1Request(socket: net.Socket, request: ReplayRequest, requestTarget: string, extraHeaders: HeaderList): Promise<number> {
  const { method, body, trailers } = request;
  const headers = [...h1Headers(request), ...extraHeaders];
  return new Promise((resolve, reject) => {
    let head = `${method} ${requestTarget} HTTP/1.1\r\n`;
    for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
    socket.cork();
    socket.write(`${head}\r\n`, 'latin1');
    if (requestFraming(headers) === 'chunked') {
      // The stored body is de-framed: it goes again as one chunk, then the captured trailers.
      if (body && body.length > 0) {
        socket.write(chunkSizeLine(body.length), 'latin1');
        socket.write(body);
        socket.write('\r\n', 'latin1');
      }
      socket.write(lastChunk(trailers), 'latin1');
    } else if (body && body.length > 0) {
      socket.write(body);
    }
    socket.uncork();

    const decoder = new Http1Decoder('response');
    decoder.expect(method);
    let status = 0;
    const take = (events: ReturnType<Http1Decoder['push']>) => {
      for (const e of events) {
        if (e.type === 'response-head' && !e.informational) status = e.status;
        else if (e.type === 'message-end' || e.type === 'switched') return resolve(status);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        take(decoder.push(chunk));
      } catch (err) {
        reject(err);
      }
    });
    socket.on('end', () => {
      try {
        take(decoder.end());
      } catch (err) {
        reject(err);
      }
      reject(new Error(status ? 'the response ended early' : 'the connection closed without a response'));
    });
    socket.on('error', reject);
    socket.resume();
  });
}

/** Sends the request as an HTTP/2 stream and reads the whole response. */
function h2Request(socket: tls.TLSSocket, request: ReplayRequest): Promise<number> {
  const { body, trailers } = request;
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${request.authority}`, { createConnection: () => socket });
    session.on('error', reject);
    const pseudo: Record<string, string> = { ':method': request.method, ':scheme': 'https', ':authority': request.authority, ':path': request.target };
    const headers: http2.OutgoingHttpHeaders = {};
    for (const name of [...request.pseudoOrder, ...Object.keys(pseudo)]) if (name in pseudo) headers[name] ??= pseudo[name];
    for (const [name, value] of request.headers) {
      const key = name.toLowerCase();
      const existing = headers[key];
      headers[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [String(existing)]), value];
    }
    const hasBody = (body?.length ?? 0) > 0 || trailers.length > 0;
    const stream = session.request(headers, { endStream: !hasBody, waitForTrailers: trailers.length > 0 });
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('wantTrailers', () => stream.sendTrailers(Object.fromEntries(trailers.map(([n, v]) => [n.toLowerCase(), v]))));
    stream.on('error', reject);
    stream.on('end', () => {
      session.close();
      resolve(status);
    });
    stream.resume();
    if (hasBody) stream.end(body ?? undefined);
  });
}

/**
 * Finds the new exchange: the connection hopscope accepted from the replaying client's port, the
 * connections opened inside it (a tunnel of its own), and the first request on any of them.
 * Bounded: a capture flooded with other traffic meanwhile cannot grow this without limit.
 */
function watchCapture(bus: CaptureBus): { exchangeOf(localPort: number): number | null; stop(): void } {
  const LIMIT = 10_000;
  const opened: Array<{ connId: number; parentId: number | null; listener: string; clientPort: number }> = [];
  const requests: Array<{ connId: number; exchangeId: number }> = [];
  const stop = bus.subscribe((e) => {
    if (e.kind === 'conn.opened' && opened.length < LIMIT) opened.push({ connId: e.connId, parentId: e.parentId, listener: e.listener, clientPort: e.clientPort });
    else if (e.kind === 'http.request' && requests.length < LIMIT) requests.push({ connId: e.connId, exchangeId: e.exchangeId });
  });
  return {
    stop,
    exchangeOf(localPort) {
      const root = opened.find((c) => c.parentId === null && c.listener === 'proxy' && c.clientPort === localPort);
      if (!root) return null;
      const ours = new Set([root.connId]);
      for (const c of opened) if (c.parentId !== null && ours.has(c.parentId)) ours.add(c.connId);
      return requests.find((r) => ours.has(r.connId))?.exchangeId ?? null;
    },
  };
}
