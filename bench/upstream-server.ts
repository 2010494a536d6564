// The benchmark's upstream, in a process of its own: HTTP and HTTPS on loopback, a small
// response on `/` and 1 MiB on `/1m`. Prints its ports as one JSON line.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';

const fixture = (name: string) => readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url));
const small = Buffer.from('hello from the benchmark upstream\n'.repeat(3));
const big = Buffer.alloc(1024 * 1024, 0x62);

const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
  const body = req.url === '/1m' ? big : small;
  req.resume();
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
};

const plain = http.createServer({ keepAliveTimeout: 60_000 }, handler);
const secure = https.createServer({ key: fixture('upstream-key.pem'), cert: fixture('upstream-cert.pem'), keepAliveTimeout: 60_000 }, handler);
await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
process.stdout.write(
  JSON.stringify({ http: (plain.address() as AddressInfo).port, https: (secure.address() as AddressInfo).port }) + '\n',
);
