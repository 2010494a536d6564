// The client's side of a WebSocket handshake on the reverse listener: an HTTP/1.1 Upgrade (Node's
// 'upgrade' event handed us the socket) or an RFC 8441 extended CONNECT stream. It switches with a
// 101 (and our Sec-WebSocket-Accept for the client's key) or a 200, and hands over the duplex that
// carries the frames; a handshake the upstream refused is answered as an ordinary response.
import http from 'node:http';
import type http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HeaderList } from '../capture/events.js';
import { pairsFromRaw } from '../net/hop-by-hop.js';
import { H1ClientLeg } from './client-h1.js';
import { H2ClientLeg } from './client-h2.js';
import type { ClientLeg } from './client-leg.js';
import { h2ResponseHeaders } from './header-translation.js';
import { firstValue, handshakeFields, switchingProtocolsHead } from './ws-handshake.js';

export type RequestView = Pick<ClientLeg, 'protocol' | 'streamId' | 'method' | 'target' | 'authority' | 'headers'>;

export interface WsClient {
  readonly request: RequestView;
  /** Sec-WebSocket-Key of an HTTP/1.1 client; null on HTTP/2 (RFC 8441 has none). */
  readonly key: string | null;
  /** The client as an ordinary exchange, for answers other than a switch (made on first use). */
  answerLeg(): ClientLeg;
  /** Answers the switch (101 or 200) with the upstream's handshake fields; the duplex then carries frames. */
  switchTo(upstreamResponse: HeaderList): { duplex: Duplex; pending: Buffer[]; sent: HeaderList };
  /** Called once if the client goes away before a switch or an answer. */
  onGone(callback: () => void): void;
}

export class H1WsClient implements WsClient {
  readonly request: RequestView;
  readonly key: string | null;
  private leg: H1ClientLeg | null = null;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly socket: Socket,
    private readonly head: Buffer,
  ) {
    const headers = pairsFromRaw(req.rawHeaders);
    this.request = {
      protocol: req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
      streamId: null,
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      authority: req.headers.host ?? null,
      headers,
    };
    this.key = firstValue(headers, 'sec-websocket-key')?.trim() ?? null;
  }

  answerLeg(): ClientLeg {
    if (!this.leg) {
      // Node handed the socket over at the Upgrade: a response of our own, then the connection closes.
      const res = new http.ServerResponse(this.req);
      res.shouldKeepAlive = false;
      res.assignSocket(this.socket);
      res.once('finish', () => this.socket.end());
      this.leg = new H1ClientLeg(this.req, res);
    }
    return this.leg;
  }

  switchTo(upstreamResponse: HeaderList): { duplex: Duplex; pending: Buffer[]; sent: HeaderList } {
    const { head, headers } = switchingProtocolsHead(this.key ?? '', upstreamResponse);
    this.socket.setTimeout(0); // no idle timeout ever closes an open WebSocket
    this.socket.write(head, 'latin1');
    return { duplex: this.socket, pending: this.head.length > 0 ? [this.head] : [], sent: headers };
  }

  onGone(callback: () => void): void {
    this.socket.once('close', callback);
  }
}

export class H2WsClient implements WsClient {
  readonly request: RequestView;
  readonly key = null;
  private readonly leg: H2ClientLeg;

  constructor(private readonly stream: http2.ServerHttp2Stream, rawHeaders: string[], protocol: 'h2' | 'h2c') {
    this.leg = new H2ClientLeg(stream, rawHeaders, protocol);
    this.request = this.leg;
  }

  answerLeg(): ClientLeg {
    return this.leg;
  }

  switchTo(upstreamResponse: HeaderList): { duplex: Duplex; pending: Buffer[]; sent: HeaderList } {
    const fields = handshakeFields(upstreamResponse);
    this.stream.respond(h2ResponseHeaders(200, fields));
    return { duplex: this.stream, pending: [], sent: [[':status', '200'], ...fields.map(([n, v]): [string, string] => [n.toLowerCase(), v])] };
  }

  onGone(callback: () => void): void {
    this.stream.once('close', callback);
  }
}
