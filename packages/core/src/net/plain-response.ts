// Short plain-text HTTP/1.1 answers hopscope writes itself on raw sockets (CONNECT failures,
// malformed requests), always closing the connection afterwards.
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';

export function plainResponse(status: number, body: string, extraHeaders: string[] = []): Buffer {
  const text = Buffer.from(body.endsWith('\n') ? body : `${body}\n`, 'utf8');
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${text.length}`,
    'Connection: close',
    ...extraHeaders,
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), text]);
}

/** Writes the answer and closes; never throws on a socket that is already gone. */
export function answerAndClose(socket: Duplex, status: number, body: string): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(plainResponse(status, `hopscope: ${body}`));
}
