// No idle timeout closes an open WebSocket. The proxy here closes idle keep-alive connections
// after 150 ms; once it has closed one that went idle after the WebSockets did (the event this
// test waits for, instead of sleeping), every WebSocket must still carry messages both ways.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, upstreamCaFile, type TestUpstream } from './helpers/upstream.js';
import { ClientLog, connectClient, opened, startWsServer, type TestWsServer, type WsPath } from './helpers/ws-peers.js';

const PATHS: WsPath[] = ['absolute-form', 'connect', 'connect-tls'];

describe('idle WebSockets', { timeout: 30_000 }, () => {
  let proxy: TestProxy;
  let plain: TestWsServer;
  let secure: TestWsServer;
  let http: TestUpstream;

  before(async () => {
    plain = await startWsServer();
    secure = await startWsServer({ tls: true });
    http = await startUpstream((_req, res) => res.end('ok'));
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], keepAliveTimeoutMs: 150 });
  });

  after(async () => {
    await proxy.close();
    await Promise.all([plain.close(), secure.close(), http.close()]);
  });

  test('outlive the idle timeout that closes a keep-alive connection, on every HTTP/1.1 path', async () => {
    const caPem = readFileSync(proxy.caCertPath, 'utf8');
    const sockets = PATHS.map((path) =>
      connectClient({ path, proxy, ca: caPem, host: 'site.test', port: (path === 'connect-tls' ? secure : plain).port, urlPath: `/idle/${path}` }),
    );
    const logs = sockets.map((s) => new ClientLog(s));
    await Promise.all(sockets.map(opened));

    // A keep-alive HTTP/1.1 connection that goes idle after the WebSockets did.
    const keepAlive = net.connect(proxy.port, proxy.host);
    keepAlive.write(`GET http://site.test:${http.port}/ HTTP/1.1\r\nHost: site.test:${http.port}\r\n\r\n`);
    await once(keepAlive, 'data');
    keepAlive.resume();
    await once(keepAlive, 'close'); // the proxy's idle timeout fired

    sockets.forEach((socket, i) => socket.send(`still here ${i}`));
    await Promise.all(logs.map((log) => log.until(() => log.messages.length === 1)));
    logs.forEach((log, i) => assert.equal(log.messages[0].data.toString(), `still here ${i}`));
    for (const socket of sockets) socket.close(1000, 'done');
    await Promise.all(logs.map((log) => log.closed));
  });
});
