// The benchmark's HTTP/2 upstream, in a process of its own: h2 over TLS on loopback, a small
// response on every path. Prints its port as one JSON line.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';

const fixture = (name: string) => readFileSync(new URL(`../test/fixtures/${name}`, import.meta.url));
const small = Buffer.from('hello from the benchmark upstream\n'.repeat(3));

const server = http2.createSecureServer({
  key: fixture('upstream-key.pem'),
  cert: fixture('upstream-cert.pem'),
  settings: { maxConcurrentStreams: 1000 },
});
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': small.length });
  stream.end(small);
});
server.on('sessionError', () => {});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
