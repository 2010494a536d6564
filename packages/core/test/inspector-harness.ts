// Shared by the inspector tests: a real proxy, a real upstream and the inspector in-process, plus
// small HTTP and WebSocket clients that can set any Host, Origin and Cookie.
import http from 'node:http';
import { WebSocket } from 'ws';
import { startTestProxy, type TestProxy } from '../../../test/helpers/proxy.js';
import { startUpstream, type TestUpstream } from '../../../test/helpers/upstream.js';
import { proxiedRequest } from '../../../test/helpers/clients.js';
import { startInspector, type Inspector, type InspectorOptions } from '../src/inspector/index.js';
import type { ServerMessage } from '../src/inspector/protocol.js';

export interface Rig {
  proxy: TestProxy;
  upstream: TestUpstream;
  inspector: Inspector;
  /** `127.0.0.1:PORT` of the inspector. */
  hostPort: string;
  /** Sends one request through the proxy to the upstream as `site.test`. */
  request(path: string, options?: { method?: string; body?: string; headers?: Record<string, string> }): Promise<number>;
  close(): Promise<void>;
}

export async function startRig(options: Partial<InspectorOptions> = {}): Promise<Rig> {
  const upstream = await startUpstream((req, res, body) => {
    if (req.url === '/echo') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(body);
    } else if (req.url?.startsWith('/status/')) {
      res.writeHead(Number(req.url.slice(8)), { 'Content-Type': 'text/plain' });
      res.end(`status ${req.url.slice(8)}`);
    } else {
      res.writeHead(200, ['Content-Type', 'text/plain', 'X-Second', 'b', 'X-First', 'a']);
      res.end(`hello ${req.url}`);
    }
  });
  const proxy = await startTestProxy();
  let inspector: Inspector;
  try {
    inspector = await startInspector({ db: proxy.db, sink: proxy.sink, bus: proxy.bus, host: '127.0.0.1', port: 0, ...options });
  } catch (err) {
    // Nothing left open: a failed start must fail the suite, not keep its process alive.
    await proxy.close();
    await upstream.close();
    throw err;
  }
  return {
    proxy,
    upstream,
    inspector,
    hostPort: `127.0.0.1:${inspector.address.port}`,
    async request(path, opts = {}) {
      const res = await proxiedRequest(proxy, `http://site.test:${upstream.port}${path}`, {
        method: opts.method,
        body: opts.body,
        headers: opts.headers,
      });
      return res.status;
    },
    async close() {
      await inspector.close();
      await proxy.close();
      await upstream.close();
    },
  };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json<T = unknown>(): T;
}

/** GET (by default) against the inspector with full control over Host, Origin and Cookie. */
export function inspectorRequest(rig: Rig, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: rig.inspector.address.port, path, method, headers: { Host: rig.hostPort, ...headers }, setHost: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString()) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Headers that pass the guard: own Host and the token cookie. */
export const authed = (rig: Rig): Record<string, string> => ({
  Cookie: `hopscope_token_${rig.inspector.address.port}=${rig.inspector.token}`,
});

export interface LiveClient {
  ws: WebSocket;
  messages: ServerMessage[];
  /** Resolves with the next message (already received or future) satisfying `match`, starting after `from`. */
  next<T extends ServerMessage['type']>(type: T, match?: (m: Extract<ServerMessage, { type: T }>) => boolean, from?: number): Promise<Extract<ServerMessage, { type: T }>>;
  send(message: unknown): void;
  close(): void;
}

/** Opens the live socket; rejects with the HTTP status when the upgrade is refused. */
export function openLive(rig: Rig, headers: Record<string, string> = {}, query = ''): Promise<LiveClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${rig.inspector.address.port}/api/live${query}`, {
      headers: { Host: rig.hostPort, Origin: `http://${rig.hostPort}`, ...authed(rig), ...headers },
    });
    const messages: ServerMessage[] = [];
    let waiters: Array<() => void> = [];
    ws.on('message', (data) => {
      messages.push(JSON.parse(data.toString()) as ServerMessage);
      const current = waiters;
      waiters = [];
      for (const w of current) w();
    });
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
    ws.on('open', () =>
      resolve({
        ws,
        messages,
        next(type, match = () => true, from = 0) {
          return new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`no "${type}" message; got ${messages.map((m) => m.type).join(', ')}`)), 8000);
            const look = () => {
              const found = messages.slice(from).find((m) => m.type === type && match(m as never));
              if (found) {
                clearTimeout(timer);
                res(found as never);
              } else waiters.push(look);
            };
            look();
          });
        },
        send: (message) => ws.send(JSON.stringify(message)),
        close: () => ws.close(),
      }),
    );
  });
}
