// TLS interception with real clients that trust only hopscope's CA: curl, Node's https and tls.
// Checks what the upstream negotiated and received, what the client saw, and what the capture
// holds for both TLS legs.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { startUpstream, upstreamCaFile, expiredTls, selfSignedTls, upstreamTls, type TestUpstream } from './helpers/upstream.js';
import { curl, openTunnel } from './helpers/clients.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { getConnection, getExchange, listExchanges } from '../packages/core/src/store/queries.js';

describe('TLS interception', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let plainAlpn: TestUpstream; // no ALPN configured: negotiates none
  let h1Only: TestUpstream; // offers http/1.1 only
  let expired: TestUpstream;
  let selfSigned: TestUpstream;
  let dir: string;
  let keylog: string;
  let caPem: string;

  before(async () => {
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => res.end(`decrypted ${req.url}`);
    plainAlpn = await startUpstream(handler, { tls: true });
    h1Only = await startUpstream(handler, { tls: { ...upstreamTls, ALPNProtocols: ['http/1.1'] } });
    expired = await startUpstream(handler, { tls: expiredTls });
    selfSigned = await startUpstream(handler, { tls: selfSignedTls });
    dir = mkdtempSync(join(tmpdir(), 'hopscope-tls-'));
    keylog = join(dir, 'keys.log');
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile], keylogFile: keylog, passthroughHosts: ['pass.test'] });
    caPem = readFileSync(proxy.caCertPath, 'utf8');
    log = recordEvents(proxy.bus);
  });

  after(async () => {
    log.stop();
    await proxy.close();
    await Promise.all([plainAlpn, h1Only, expired, selfSigned].map((u) => u.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  const connectionFor = async (host: string, port: number) => {
    const tunnel = await log.waitFor((e) => e.kind === 'conn.tunnel' && e.host === host && e.port === port);
    const connId = (tunnel as { connId: number }).connId;
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    return getConnection(proxy.db, connId)!;
  };

  test('curl trusting only the hopscope CA: decrypted, forwarded, both legs recorded', async () => {
    const result = await curl(['-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, `https://site.test:${h1Only.port}/secret?x=1`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'decrypted /secret?x=1');
    assert.deepEqual(h1Only.handshakes.at(-1), { alpn: 'http/1.1', servername: 'site.test' }, 'upstream saw the SNI and the offered ALPN');

    const conn = await connectionFor('site.test', h1Only.port);
    assert.equal(conn.intercepted, true);
    assert.deepEqual(conn.hello?.alpn, ['h2', 'http/1.1'], 'curl offered h2 and http/1.1');
    const { client, upstream } = conn.tls;
    assert.equal(upstream?.alpn, 'http/1.1');
    assert.equal(client?.alpn, 'http/1.1', 'the client leg mirrors what upstream chose');
    assert.deepEqual(upstream?.alpnOffered, ['h2', 'http/1.1']);
    assert.match(upstream?.version ?? '', /^TLSv1\.[23]$/);
    assert.ok(upstream?.cipher);
    assert.equal(upstream?.certificates[0].subject, 'CN=site.test');
    assert.match(upstream?.certificates[0].fingerprint256 ?? '', /^[0-9A-F:]{95}$/);
    assert.match(client?.certificates[0].issuer ?? '', /hopscope CA/);
    assert.ok((client?.handshakeMs ?? -1) >= 0 && (upstream?.handshakeMs ?? -1) >= 0);

    const request = log.of('http.request').find((e) => e.connId === conn.id)!;
    assert.equal(request.scheme, 'https');
    assert.equal(request.url, `https://site.test:${h1Only.port}/secret?x=1`);
    await log.waitFor((e) => e.kind === 'http.completed' && e.exchangeId === request.exchangeId);
    await proxy.flush();
    const exchange = getExchange(proxy.db, request.exchangeId)!;
    assert.equal(exchange.responseBody?.data.toString(), 'decrypted /secret?x=1');
  });

  test('a client that offers no ALPN gets none upstream either', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      openTunnel(proxy, `site.test:${plainAlpn.port}`).then((raw) => {
        const socket = tls.connect({ socket: raw, servername: 'site.test', ca: caPem }, () => {
          socket.write(`GET /no-alpn HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`);
        });
        let text = '';
        socket.setEncoding('utf8').on('data', (t: string) => (text += t));
        socket.on('end', () => {
          socket.end();
          resolve(text);
        });
        socket.on('error', reject);
      }, reject);
    });
    assert.match(body, /decrypted \/no-alpn$/);
    assert.equal(plainAlpn.handshakes.at(-1)?.alpn, false);
    const conn = await connectionFor('site.test', plainAlpn.port);
    assert.deepEqual(conn.hello?.alpn, []);
    assert.equal(conn.tls.client?.alpn, null);
    assert.equal(conn.tls.upstream?.alpn, null);
  });

  test('an IP address target gets a certificate with an IP SAN', async () => {
    const result = await curl(['-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, `https://127.0.0.1:${h1Only.port}/by-ip`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'decrypted /by-ip');
    const conn = await connectionFor('127.0.0.1', h1Only.port);
    assert.equal(conn.hello?.sni, null, 'curl sends no SNI for an IP');
    assert.ok(conn.tls.client?.certificates[0].sans.includes('IP Address:127.0.0.1'));
  });

  test('a client without SNI gets a certificate for the CONNECT host', async () => {
    const raw = await openTunnel(proxy, `site.test:${h1Only.port}`);
    const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const socket = tls.connect({
        socket: raw,
        ca: caPem,
        servername: '', // no SNI extension
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity('site.test', cert),
      });
      socket.once('secureConnect', () => {
        resolve(socket.getPeerCertificate());
        socket.destroy();
      });
      socket.once('error', reject);
    });
    assert.equal(peer.subject.CN, 'site.test');
  });

  const certOf = { expired: expiredTls.cert, 'self-signed': selfSignedTls.cert };
  for (const [name, upstream, pattern] of [
    ['expired', () => expired, /expired/i],
    ['self-signed', () => selfSigned, /self[- ]signed/i],
  ] as const) {
    test(`an upstream with a ${name} certificate: 502 saying why, captured on the upstream leg`, async () => {
      const result = await curl(['-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, `https://${name}.test:${upstream().port}/`]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^hopscope: the certificate of .* was rejected/);
      assert.match(result.stdout, pattern);
      assert.equal(upstream().received.length, 0, 'nothing reached the untrusted upstream');
      const conn = await connectionFor(`${name}.test`, upstream().port);
      assert.equal(conn.tls.upstream?.error?.reason, 'upstream-cert');
      assert.match(conn.tls.upstream?.error?.message ?? '', pattern);
      assert.equal(conn.error?.reason, 'upstream-cert');
      // The certificate that was refused is kept: it is what the person needs to see.
      assert.equal(conn.tls.upstream?.certificates[0]?.fingerprint256, new X509Certificate(certOf[name]).fingerprint256);
    });
  }

  test('an upstream whose certificate does not name the host: 502 naming the mismatch, the certificate kept', async () => {
    // The test proxy sends every *.test name to 127.0.0.1; this certificate names site.test and localhost only.
    const requestsBefore = plainAlpn.received.length;
    const result = await curl(['-x', proxy.proxyUrl, '--cacert', proxy.caCertPath, `https://wrong-name.test:${plainAlpn.port}/`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^hopscope: the certificate of .* was rejected/);
    assert.match(result.stdout, /wrong-name\.test/);
    assert.equal(plainAlpn.received.length, requestsBefore, 'no request reached the upstream');
    const conn = await connectionFor('wrong-name.test', plainAlpn.port);
    assert.deepEqual([conn.tls.upstream?.error?.reason, conn.tls.upstream?.error?.code], ['upstream-cert', 'ERR_TLS_CERT_ALTNAME_INVALID']);
    assert.match(conn.tls.upstream?.error?.message ?? '', /altnames/);
    assert.deepEqual(conn.tls.upstream?.certificates[0]?.sans.slice(0, 3), ['DNS:site.test', 'DNS:*.site.test', 'DNS:localhost'], 'the names it does carry');
  });

  test('a client offering no ALPN (handshakes run in parallel) still reads why the upstream was refused', async () => {
    const raw = await openTunnel(proxy, `expired.test:${expired.port}`);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ socket: raw, servername: 'expired.test', ca: caPem }, () => {
        socket.write('GET / HTTP/1.1\r\nHost: expired.test\r\nConnection: close\r\n\r\n');
      });
      let text = '';
      socket.setEncoding('utf8').on('data', (t: string) => (text += t));
      socket.on('end', () => {
        socket.end();
        resolve(text);
      });
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 502 /);
    assert.match(answer, /certificate of expired\.test was rejected.*expired/i);
  });

  test('--upstream-insecure lets an untrusted upstream through', async () => {
    const insecure = await startTestProxy({ upstreamInsecure: true });
    try {
      const result = await curl(['-x', insecure.proxyUrl, '--cacert', insecure.caCertPath, `https://self-signed.test:${selfSigned.port}/ok`]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'decrypted /ok');
    } finally {
      await insecure.close();
    }
  });

  test('a client that does not trust the CA: the rejection is captured and a hint names the CA file', async () => {
    const result = await curl(['-x', proxy.proxyUrl, '--cacert', upstreamCaFile, `https://reject.site.test:${h1Only.port}/`]);
    assert.notEqual(result.code, 0, 'curl must refuse our certificate');
    const conn = await connectionFor('reject.site.test', h1Only.port);
    assert.equal(conn.tls.client?.error?.reason, 'cert-rejected');
    assert.equal(conn.error?.reason, 'cert-rejected');
    assert.ok(proxy.notices.some((n) => n.includes('reject.site.test') && n.includes(proxy.caCertPath)), proxy.notices.join('\n'));
    // Nothing went through the tunnel, yet the exchange list shows the failure as its CONNECT.
    const [row] = listExchanges(proxy.db, { limit: 5, connectionId: conn.id });
    assert.deepEqual([row.method, row.url, row.status, row.state, row.errorReason], ['CONNECT', `https://reject.site.test:${h1Only.port}`, 200, 'failed', 'cert-rejected']);
  });

  test('passthrough globs relay TLS blind', async () => {
    const result = await curl(['-x', proxy.proxyUrl, '--cacert', upstreamCaFile, '--resolve', `pass.test:${h1Only.port}:127.0.0.1`, `https://pass.test:${h1Only.port}/blind`]);
    // The upstream certificate does not name pass.test, so only check curl reached the real server.
    assert.match(result.stderr, /pass\.test|certificate|subject/i);
    const conn = await connectionFor('pass.test', h1Only.port);
    assert.equal(conn.intercepted, false);
    assert.equal(conn.hello?.sni, 'pass.test');
    assert.equal(conn.tls.client, null);
  });

  test('--intercept limits decryption to matching hosts', async () => {
    const limited = await startTestProxy({ interceptHosts: ['*.only.test'], upstreamCaFiles: [upstreamCaFile] });
    const limitedLog = recordEvents(limited.bus);
    try {
      const blind = await curl(['-x', limited.proxyUrl, '--cacert', upstreamCaFile, `https://site.test:${h1Only.port}/`]);
      assert.equal(blind.code, 0, blind.stderr);
      assert.equal(blind.stdout, 'decrypted /', 'the real upstream certificate reached curl');
      const detected = await limitedLog.waitFor((e) => e.kind === 'conn.detected');
      assert.equal((detected as { intercepted: boolean }).intercepted, false);
    } finally {
      limitedLog.stop();
      await limited.close();
    }
  });

  test('key-log lines are written for both legs', async () => {
    assert.ok(existsSync(keylog));
    const lines = readFileSync(keylog, 'utf8').trim().split('\n');
    assert.ok(lines.every((l) => /^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]+$/.test(l)), 'NSS key-log format');
    const randoms = new Set(lines.filter((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0')).map((l) => l.split(' ')[1]));
    assert.ok(randoms.size >= 2, `expected secrets of several handshakes (both legs), got ${randoms.size}`);
  });
});

