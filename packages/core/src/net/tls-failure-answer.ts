// When the upstream handshake fails, the client's handshake is still finished (with our leaf)
// so that it gets a 502 whose body says what was wrong, over HTTP/1.1 or HTTP/2 as it speaks.
import http from 'node:http';
import http2 from 'node:http2';
import type tls from 'node:tls';
import type { Failure } from '../capture/events.js';
import { describeUpstreamFailure, statusForFailure } from './failure.js';
import { markHandshakeDone } from './h2-server-session.js';

export function answerTlsFailure(client: tls.TLSSocket, failure: Failure, host: string, port: number): void {
  const status = statusForFailure(failure.reason);
  const body = `hopscope: ${describeUpstreamFailure(failure, host, port)}\n`;
  if (client.alpnProtocol === 'h2') {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
      stream.end(body);
    });
    server.on('sessionError', () => client.destroy());
    markHandshakeDone(client);
    server.emit('connection', client);
    return;
  }
  const server = http.createServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
    res.end(body);
  });
  server.on('clientError', () => client.destroy());
  server.emit('connection', client);
}
