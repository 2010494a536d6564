// What flows inside an exchange or connection, over the API: a real WebSocket and a real HTTP/2
// connection (TLS intercepted) through the proxy, then their messages and frames from the inspector.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestProxy, type TestProxy } from '../../../test/helpers/proxy.js';
import { upstreamCaFile } from '../../../test/helpers/upstream.js';
import { recordEvents } from '../../../test/helpers/events.js';
import { ClientLog, connectClient, startWsServer, type TestWsServer } from '../../../test/helpers/ws-peers.js';
import { connectThroughProxy, h2Request, startH2Upstream, type H2Upstream } from '../../../test/helpers/h2-peers.js';
import { startInspector, type Inspector } from '../src/inspector/index.js';
import type { ConnectionDetailJson, ExchangeListResponse, H2FramesResponse, WebSocketResponse, WsMessageResponse } from '../src/inspector/protocol.js';

describe('inspector: WebSocket messages and HTTP/2 frames', { timeout: 20_000 }, () => {
  let proxy: TestProxy;
  let inspector: Inspector;
  let wsServer: TestWsServer;
  let h2: H2Upstream;
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`http://127.0.0.1:${inspector.address.port}${path}`, { headers: { Authorization: `Bearer ${inspector.token}` } });
    assert.equal(res.status, 200, path);
    return (await res.json()) as T;
  };

  before(async () => {
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    inspector = await startInspector({ db: proxy.db, sink: proxy.sink, host: '127.0.0.1', port: 0 });
    wsServer = await startWsServer();
    h2 = await startH2Upstream((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('over h2');
    });
  });
  after(async () => {
    await inspector.close();
    await proxy.close();
    await wsServer.close();
    await h2.close();
  });

  test('a WebSocket: its messages with text and binary payloads, and each message frames', async () => {
    const events = recordEvents(proxy.bus);
    const socket = connectClient({ path: 'absolute-form', proxy, host: 'ws.test', port: wsServer.port });
    const log = new ClientLog(socket);
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send('hello inspector');
    socket.send(Buffer.from([0, 1, 2, 255]));
    await log.until(() => log.messages.length === 2);
    socket.close(1000, 'done');
    await log.closed;
    // The tap ends the WebSocket once both close frames went by; then one flush commits it all.
    await events.waitFor((e) => e.kind === 'ws.closed');
    events.stop();
    await proxy.flush();

    const list = await get<ExchangeListResponse>('/api/exchanges?filter=has:websocket');
    assert.equal(list.exchanges.length, 1);
    assert.equal(list.exchanges[0].websocket, true);
    const id = list.exchanges[0].id;
    const ws = await get<WebSocketResponse>(`/api/exchanges/${id}/websocket`);
    assert.equal(ws.messages.length, 6, 'two texts, two binaries, two closes');
    assert.ok(ws.websocket, 'the socket row');
    const texts = ws.messages.filter((m) => m.opcode === 1).map((m) => [m.side, m.data?.encoding, m.data?.text]);
    assert.deepEqual(texts, [['client', 'utf8', 'hello inspector'], ['server', 'utf8', 'hello inspector']]);
    const binary = ws.messages.find((m) => m.opcode === 2 && m.side === 'client')!;
    assert.deepEqual(binary.data, { encoding: 'base64', text: 'AAEC/w==', complete: true });
    const close = ws.messages.find((m) => m.opcode === 8 && m.side === 'client')!;
    assert.equal(close.closeCode, 1000);
    assert.equal(close.closeReason, 'done');

    const one = await get<WsMessageResponse>(`/api/ws-messages/${ws.messages[0].id}`);
    assert.equal(one.message.id, ws.messages[0].id);
    assert.equal(one.frames.length, 1);
    assert.equal(one.frames[0].masked, true, 'client frames are masked');
    const page = await get<WebSocketResponse>(`/api/exchanges/${id}/websocket?limit=1`);
    assert.equal(page.messages.length, 1);
    assert.equal(page.hasMore, true);
  });

  test('an HTTP/2 connection: its frames in order, filterable by stream, HEADERS decoded', async () => {
    const caPem = readFileSync(proxy.caCertPath, 'utf8');
    const session = await connectThroughProxy(proxy, 'h2.site.test', h2.port, { caPem });
    const res = await h2Request(session, { ':path': '/frames', ':method': 'GET' });
    assert.equal(res.body.toString(), 'over h2');
    session.close();
    await new Promise((resolve) => session.once('close', resolve));
    proxy.flush();

    const list = await get<ExchangeListResponse>('/api/exchanges?filter=protocol:h2');
    assert.equal(list.exchanges.length, 1);
    const row = list.exchanges[0];
    assert.equal(row.clientAlpn, 'h2');
    assert.equal(row.upstreamAlpn, 'h2');
    const conn = await get<ConnectionDetailJson>(`/api/connections/${row.connectionId}`);
    assert.equal(conn.tls.client?.alpn, 'h2');
    assert.equal(conn.tls.upstream?.alpn, 'h2');
    assert.equal(conn.tls.client?.sni, 'h2.site.test');

    const all = await get<H2FramesResponse>(`/api/connections/${row.connectionId}/h2-frames`);
    const names = all.frames.map((f) => `${f.side}:${f.typeName}`);
    assert.ok(names.includes('client:SETTINGS') && names.includes('server:SETTINGS'), names.join(' '));
    const stream = await get<H2FramesResponse>(`/api/connections/${row.connectionId}/h2-frames?streamId=${row.streamId}`);
    assert.ok(stream.frames.length >= 2 && stream.frames.every((f) => f.streamId === row.streamId));
    const headers = stream.frames.find((f) => f.typeName === 'HEADERS' && f.side === 'client')!;
    const fields = headers.details?.headerBlock?.fields.map((f) => [f.name, f.value]);
    assert.ok(fields?.some(([n, v]) => n === ':path' && v === '/frames'), JSON.stringify(fields));
  });
});
