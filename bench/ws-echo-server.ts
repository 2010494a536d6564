// The WebSocket benchmark's upstream, in a process of its own: a `ws` echo server on ws:// and
// wss:// (the test fixture certificate for site.test). Prints its ports as one JSON line.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';

const fixture = (name: string) => readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url));
const plain = http.createServer();
const secure = https.createServer({ key: fixture('upstream-key.pem'), cert: fixture('upstream-cert.pem') });

for (const server of [plain, secure]) {
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (socket: WebSocket) => {
    socket.on('error', () => {});
    socket.on('message', (data, binary) => socket.send(data as Buffer, { binary }));
  });
}
await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
process.stdout.write(
  JSON.stringify({ ws: (plain.address() as AddressInfo).port, wss: (secure.address() as AddressInfo).port }) + '\n',
);
