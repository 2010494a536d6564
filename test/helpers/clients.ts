// Real clients for tests: Node's http client through the proxy, raw CONNECT tunnels and curl.
import http from 'node:http';
import net from 'node:net';
import { execFile } from 'node:child_process';

export interface ClientResponse {
  status: number;
  statusText: string;
  rawHeaders: string[];
  body: Buffer;
  trailers: string[];
}

/** Sends one absolute-form request through the proxy and reads the whole response. */
export function proxiedRequest(
  proxy: { host: string; port: number },
  url: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders | string[]; body?: Buffer | string; agent?: http.Agent } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: proxy.host,
      port: proxy.port,
      method: options.method ?? 'GET',
      path: url,
      // Real clients send Host with absolute-form targets too; an array of headers is sent as given.
      headers: (Array.isArray(options.headers) ? options.headers : { Host: new URL(url).host, ...options.headers }) as http.OutgoingHttpHeaders,
      setHost: false,
      agent: options.agent ?? false,
    });
    req.on('error', reject);
    req.on('response', (res) => collect(res).then(resolve, reject));
    req.end(options.body);
  });
}

export function collect(res: http.IncomingMessage): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () =>
      resolve({
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        rawHeaders: res.rawHeaders,
        body: Buffer.concat(chunks),
        trailers: res.rawTrailers,
      }),
    );
  });
}

/** Opens a CONNECT tunnel and resolves with the socket once the proxy answered 200. */
export function openTunnel(proxy: { host: string; port: number }, authority: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true });
    socket.once('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      socket.pause();
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.1 200 /.test(status)) {
        socket.destroy();
        reject(new Error(`CONNECT refused: ${head.toString('utf8')}`));
        return;
      }
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      socket.removeListener('error', reject);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** Writes raw bytes to the proxy and returns everything it sent back until it closed. */
export function rawExchange(proxy: { host: string; port: number }, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.host, port: proxy.port });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(bytes);
  });
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function curl(args: string[], timeoutMs = 15_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['--silent', '--show-error', ...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
