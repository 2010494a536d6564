// The reverse-proxy listener (--reverse-listen): clients talk to it as to the server itself. Each
// connection is recorded with listener `reverse`; then TLS (--reverse-tls: ALPN h2 or http/1.1) or,
// in cleartext, the first bytes (the HTTP/2 preface: h2c with prior knowledge, else HTTP/1.x)
// decide between Node's HTTP/1 parser and an HTTP/2 server session. Neither Node server listens
// itself: hopscope owns every accepted socket, the servers only parse.
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type tls from 'node:tls';
import type { LeafMinter } from '../ca/leaf-minter.js';
import type { ConnectionRecord } from '../net/connection-registry.js';
import { detectProtocol } from '../net/detect.js';
import { listenOn } from '../net/listen.js';
import { startServerSession } from '../net/h2-server-session.js';
import { answerAndClose } from '../net/plain-response.js';
import { requestFraming } from '../net/request-head.js';
import type { ProxyContext } from '../net/proxy-context.js';
import { H1ClientLeg } from './client-h1.js';
import { H2ClientLeg } from './client-h2.js';
import { acceptClientTls, listenerNames } from './client-tls.js';
import { headerPairsFor, pairsFromRawH2, pseudoHeader } from './header-translation.js';
import { dispatchRequest, openExchange, refuse, type ListenerView } from './reverse-dispatch.js';
import type { ReverseDeps } from './reverse-exchange.js';
import type { ReverseConfig } from './reverse-rules.js';
import { UpstreamOrigins, type UpstreamOriginsOptions } from './upstream-origins.js';
import { bridgeWebSocket } from './ws-bridge.js';
import { H1WsClient, H2WsClient } from './ws-client.js';
import { asksForWebSocket, isExtendedConnect } from './ws-handshake.js';

/** Client bytes read at most to tell the HTTP/2 preface from an HTTP/1 request line. */
const MAX_DETECTION_BYTES = 64;

export interface ReverseListenerOptions {
  ctx: ProxyContext;
  config: ReverseConfig;
  /** Records an accepted connection (ProxyServer.recordConnection with listener `reverse`). */
  recordConnection: (socket: Socket) => ConnectionRecord;
  minter: LeafMinter;
  watchKeylog?: (socket: tls.TLSSocket) => void;
  upstreamTls: UpstreamOriginsOptions;
}

type H1Listener = (this: http.Server, socket: Socket) => void;

export class ReverseListener {
  readonly origins: UpstreamOrigins;
  private readonly server: net.Server;
  private readonly h1: http.Server;
  private readonly h1Connection: H1Listener;
  private readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** The connection record behind each socket handed to Node's HTTP/1 parser. */
  private readonly records = new WeakMap<Socket, ConnectionRecord>();
  private readonly deps: ReverseDeps;
  private readonly names: Set<string>;
  private view: ListenerView;

  constructor(private readonly o: ReverseListenerOptions) {
    const { ctx, config } = o;
    this.origins = new UpstreamOrigins(ctx, o.upstreamTls);
    this.deps = { ctx, config, origins: this.origins };
    this.names = listenerNames(config.listenHost, config.rules.map((r) => r.host));
    this.view = { scheme: config.tls ? 'https' : 'http', host: config.listenHost, port: config.listenPort };
    this.server = net.createServer({ noDelay: true }, (raw) => this.accept(raw));

    this.h1 = http.createServer({
      maxHeaderSize: ctx.config.maxHeaderBytes,
      requestTimeout: 0, // uploads may take as long as they take
      headersTimeout: ctx.config.headersTimeoutMs, // slowloris: a header block trickled in gets a 408
      // Node checks header deadlines on this interval (30 s by default): often enough that one fires on time.
      connectionsCheckingInterval: ctx.config.headersTimeoutMs > 0 ? Math.min(1_000, Math.max(10, Math.floor(ctx.config.headersTimeoutMs / 4))) : 30_000,
      keepAliveTimeout: ctx.config.keepAliveTimeoutMs,
      noDelay: true,
    });
    this.h1.maxHeadersCount = 0; // the byte limit is the bound, not Node's 2,000 headers
    const [listener] = this.h1.listeners('connection') as H1Listener[];
    this.h1Connection = listener;
    this.h1.removeAllListeners('connection');
    this.h1.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const record = this.records.get(req.socket as Socket);
      if (!record) return res.destroy();
      dispatchRequest(this.deps, this.view, record, new H1ClientLeg(req, res));
    });
    // Node routes every request with Upgrade here: WebSockets are bridged, any other switch (h2c) is
    // refused by answering the request itself, after which the connection closes.
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const record = this.records.get(socket);
      if (!record) return socket.destroy();
      const client = new H1WsClient(req, socket, head);
      if (asksForWebSocket(client.request.headers)) return bridgeWebSocket(this.deps, this.view, record, client);
      if (requestFraming(client.request.headers) !== 'none') {
        record.error ??= { reason: 'bad-request', message: 'an Upgrade request with a body', code: 'upgrade-body' };
        return answerAndClose(socket, 501, 'the reverse proxy does not carry a request body along with an Upgrade other than websocket');
      }
      dispatchRequest(this.deps, this.view, record, client.answerLeg());
    });
    this.h1.on('connect', (req: http.IncomingMessage, socket: Socket) => {
      const record = this.records.get(socket);
      if (record) record.error ??= { reason: 'bad-request', message: `CONNECT ${req.url ?? ''} on the reverse listener`, code: 'connect' };
      answerAndClose(socket, 405, 'the reverse proxy does not open CONNECT tunnels (use the proxy port for that)');
    });
    this.h1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.rejectMalformed(err, socket));

    // Advertises RFC 8441 so that browsers open WebSockets over HTTP/2 here.
    this.h2 = http2.createServer({
      settings: { enableConnectProtocol: true, maxHeaderListSize: ctx.config.maxHeaderBytes },
      maxHeaderListPairs: headerPairsFor(ctx.config.maxHeaderBytes),
    });
  }

  async listen(): Promise<AddressInfo> {
    const address = await listenOn(this.server, this.o.config.listenHost, this.o.config.listenPort);
    this.view = { ...this.view, port: address.port };
    return address;
  }

  /**
   * Stops accepting and tells HTTP/2 clients to open no more streams (GOAWAY). Resolves once every
   * connection is gone (ProxyServer.close() ends what is left after its grace), then closes the
   * upstream sessions.
   */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) if (!session.closed) session.close();
    return closed.then(() => this.origins.destroy());
  }

  private accept(raw: Socket): void {
    const record = this.o.recordConnection(raw);
    const { ctx, config } = this.o;
    if (config.tls) {
      ctx.bus.emit({ kind: 'conn.detected', connId: record.id, protocol: 'tls', hello: null, intercepted: true });
      const tlsOptions = { minter: this.o.minter, names: this.names, watchKeylog: this.o.watchKeylog, handshakeTimeoutMs: ctx.config.connectTimeoutMs };
      acceptClientTls(ctx, record, raw, tlsOptions, (socket, alpn) => (alpn === 'h2' ? this.serveH2(socket, record, 'h2') : this.serveH1(socket, record)));
      return;
    }
    this.detect(raw, record);
  }

  /** Cleartext: the HTTP/2 preface means h2c with prior knowledge; anything else goes to the HTTP/1 parser. */
  private detect(raw: Socket, record: ConnectionRecord): void {
    const { ctx } = this.o;
    let bytes = Buffer.alloc(0);
    const idle = setTimeout(() => raw.destroy(), ctx.config.keepAliveTimeoutMs);
    const onData = (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      const verdict = detectProtocol(bytes);
      if (verdict === 'need-more' && bytes.length < MAX_DETECTION_BYTES) return;
      clearTimeout(idle);
      raw.removeListener('data', onData);
      raw.pause();
      raw.unshift(bytes);
      if (verdict === 'tls') {
        ctx.bus.emit({ kind: 'conn.detected', connId: record.id, protocol: 'tls', hello: null, intercepted: false });
        record.error ??= { reason: 'bad-request', message: 'a TLS handshake on the cleartext reverse listener (start it with --reverse-tls)', code: 'tls-on-plain' };
        raw.destroy();
        return;
      }
      const protocol = verdict === 'h2c' ? 'h2c' : verdict === 'http1' ? 'http1' : 'opaque';
      ctx.bus.emit({ kind: 'conn.detected', connId: record.id, protocol, hello: null, intercepted: false });
      if (verdict === 'h2c') this.serveH2(raw, record, 'h2c');
      else {
        this.serveH1(raw, record); // the parser answers 400 to what is not HTTP
        raw.resume();
      }
    };
    raw.on('data', onData);
    raw.once('close', () => clearTimeout(idle));
  }

  private serveH1(socket: Socket, record: ConnectionRecord): void {
    this.records.set(socket, record);
    this.h1Connection.call(this.h1, socket);
  }

  private serveH2(socket: Socket, record: ConnectionRecord, protocol: 'h2' | 'h2c'): void {
    const s = startServerSession(this.h2, socket, record, this.sessions);
    if (!s) return;
    s.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      const headers = pairsFromRawH2(rawHeaders);
      if (!isExtendedConnect(headers)) return dispatchRequest(this.deps, this.view, record, new H2ClientLeg(stream, rawHeaders, protocol));
      const client = new H2WsClient(stream, rawHeaders, protocol);
      if (pseudoHeader(headers, ':protocol') === 'websocket') return bridgeWebSocket(this.deps, this.view, record, client);
      const { exchangeId } = openExchange(this.deps, this.view, record, client.request);
      refuse(this.deps, record, exchangeId, client.answerLeg(), 501, `the reverse proxy carries :protocol websocket only, not ${pseudoHeader(headers, ':protocol')}`, 'protocol');
    });
  }

  private rejectMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
    const record = this.records.get(socket);
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const cutShort = err.code === 'HPE_INVALID_EOF_STATE'; // the client hung up inside a message
    if (record) {
      record.error ??= {
        reason: tooLarge ? 'headers-too-large' : timedOut ? 'timeout' : cutShort ? 'aborted' : 'bad-request',
        message: err.message,
        ...(err.code ? { code: err.code } : {}),
      };
    }
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = tooLarge ? 431 : timedOut ? 408 : 400;
    const what = tooLarge ? 'request header block too large' : timedOut ? 'request headers took too long' : 'malformed request';
    answerAndClose(socket, status, `${what} (${err.code ?? err.message})`);
  }
}
