// Starts the inspector: one HTTP server on loopback serving the UI, the JSON API and the live
// WebSocket, every request passing the security guard first.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { listenOn } from '../net/listen.js';
import type Database from 'better-sqlite3';
import { WebSocketServer } from 'ws';
import type { CaptureBus } from '../capture/bus.js';
import type { ProxyCredentials } from '../net/proxy-auth.js';
import { readLastIds } from '../store/open-store.js';
import type { SqliteSink } from '../store/sqlite-sink.js';
import { handleHarRoute } from '../export/har-route.js';
import { handleApi, sendError } from './api-routes.js';
import { LiveHub, type LiveHubOptions } from './live-hub.js';
import type { ReplayContext } from './replay.js';
import { createGuard, newToken, tokenCookie } from './security.js';
import { DEFAULT_UI_DIR, serveStatic } from './static-files.js';

export interface InspectorOptions {
  db: Database.Database;
  sink: SqliteSink;
  /** The capture bus: Resend follows it to name the exchange it made (the hub reads committed rows only). */
  bus?: CaptureBus;
  /** Address to bind: loopback unless the user asks otherwise. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Fixed token (e.g. for scripts); default a random one per start. */
  token?: string;
  /** Built UI folder; default packages/ui/dist. */
  uiDir?: string;
  /** Shown in the UI's empty state so people can set up a client. */
  proxyUrl?: string;
  caPath?: string;
  /** The credentials the proxy port asks for (--proxy-auth): Resend presents them. */
  proxyAuth?: ProxyCredentials | null;
  live?: LiveHubOptions;
}

export interface Inspector {
  /** URL to open, with `?token=…`. */
  url: string;
  address: AddressInfo;
  token: string;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
};

/** Resend needs the proxy port, the CA the replaying client trusts, and the bus. */
function replayContext(options: InspectorOptions): ReplayContext | null {
  if (!options.proxyUrl || !options.caPath || !options.bus) return null;
  const url = new URL(options.proxyUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {
    // A proxy on every address is reached on loopback.
    proxy: { host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port: Number(url.port), credentials: options.proxyAuth ?? null },
    caPath: options.caPath,
    bus: options.bus,
    timeoutMs: 60_000,
  };
}

export async function startInspector(options: InspectorOptions): Promise<Inspector> {
  const { db, sink } = options;
  const token = options.token ?? newToken();
  const uiDir = options.uiDir ?? DEFAULT_UI_DIR;
  const hub = new LiveHub(db, readLastIds(db).seq, options.live);
  const stopCommitted = sink.onCommitted((info) => hub.committed(info));
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const api = {
    db,
    seq: () => hub.seq,
    proxyUrl: options.proxyUrl ?? null,
    caPath: options.caPath ?? null,
    replay: replayContext(options),
    flush: () => sink.flush(),
  };

  const server = http.createServer();
  const address = await listenOn(server, options.host, options.port);
  const guard = createGuard(token, options.host, address.port);

  server.on('request', (req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const url = new URL(req.url ?? '/', 'http://inspector.invalid');
    const verdict = guard.check(req, url, { upgrade: false });
    if (!verdict.ok) {
      if (url.pathname.startsWith('/api/')) sendError(res, verdict.status, verdict.status === 401 ? 'unauthorized' : 'forbidden', verdict.message);
      else {
        res.writeHead(verdict.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(`${verdict.message}\n`);
      }
      return;
    }
    if (verdict.tokenFromQuery) {
      res.setHeader('Set-Cookie', tokenCookie(guard.cookie, token));
      // Keep the token out of the address bar and history once it is in the cookie.
      if (!url.pathname.startsWith('/api/') && req.method === 'GET') {
        url.searchParams.delete('token');
        res.writeHead(303, { Location: `${url.pathname}${url.search}`, 'Cache-Control': 'no-store' });
        res.end();
        return;
      }
    }
    try {
      if (url.pathname.startsWith('/api/')) {
        if (!handleApi(api, req, res, url) && !handleHarRoute(db, req, res, url)) sendError(res, 404, 'not-found', `No API route ${url.pathname}.`);
        return;
      }
      serveStatic(uiDir, url.pathname, req, res);
    } catch (err) {
      if (!res.headersSent) sendError(res, 500, 'internal', (err as Error).message);
      else res.destroy();
    }
  });

  server.on('upgrade', (req, socket: Socket, head) => {
    const url = new URL(req.url ?? '/', 'http://inspector.invalid');
    const verdict = url.pathname === '/api/live' ? guard.check(req, url, { upgrade: true }) : null;
    if (!verdict?.ok) {
      const status = verdict ? verdict.status : 404;
      const message = verdict && !verdict.ok ? verdict.message : 'The live WebSocket is at /api/live.';
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${message}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => hub.attach(ws));
  });

  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const shownHost = host === '0.0.0.0' || host === '[::]' ? 'localhost' : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${address.port}/?token=${token}`,
    address,
    token,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        stopCommitted();
        hub.close();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
