import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { LeafMinter, parseHost } from '../src/ca/leaf-minter.js';
import { certificateInfo, chainInfo, localCertificateInfo, splitSans } from '../src/ca/cert-info.js';
import { makeTestCa } from './helpers/test-ca.js';
import type { TestCa } from './helpers/test-ca.js';

const DAY = 24 * 60 * 60 * 1000;
/** Per test; suites get 30 s since RSA key generation time varies a lot on a loaded machine. */
const bounded = { timeout: 10_000 };
let testCa: TestCa;
let fileCount = 0;

function opensslVerify(certPem: string, ...checks: string[]): { ok: boolean; output: string } {
  const file = join(testCa.dir, `leaf-${fileCount++}.pem`);
  writeFileSync(file, certPem);
  const r = spawnSync('openssl', ['verify', '-CAfile', testCa.ca.certPath, ...checks, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

/** A TLS server on loopback that answers each connection with "hello <servername>". */
async function startServer(options: tls.TlsOptions): Promise<{ server: tls.Server; port: number }> {
  const server = tls.createServer(options, (socket) => {
    socket.end(`hello ${socket.servername || '-'}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** Connects, waits for the handshake and the server's whole answer (or the error). */
async function connect(options: tls.ConnectionOptions): Promise<{ socket: tls.TLSSocket; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(options);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve({ socket, text }));
    socket.on('error', reject);
  });
}

before(async () => {
  testCa = await makeTestCa();
}, bounded);
after(() => testCa.cleanup());

describe('LeafMinter.mint', { timeout: 30_000 }, () => {
  test('a leaf for a DNS name has the right fields and verifies with openssl', bounded, () => {
    const leaf = testCa.minter.mint('site.test');
    const x = new X509Certificate(leaf.certPem);
    const caCert = testCa.ca.cert;
    assert.equal(x.subject, 'O=hopscope\nCN=site.test');
    assert.equal(x.subjectAltName, 'DNS:site.test');
    assert.equal(x.issuer, caCert.subject);
    assert.equal(x.ca, false);
    assert.ok(x.checkIssued(caCert));
    assert.ok(x.verify(caCert.publicKey));
    assert.deepEqual(x.raw, leaf.certDer);
    assert.equal(x.serialNumber, leaf.serialNumber.toUpperCase());

    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: leaf.certPem, encoding: 'utf8' });
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /X509v3 Basic Constraints: \n\s+CA:FALSE\n/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/, 'the leaf key is ECDSA P-256');
    assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    const caText = execFileSync('openssl', ['x509', '-noout', '-text', '-in', testCa.ca.certPath], { encoding: 'utf8' });
    const ski = /Subject Key Identifier:\s+(\S+)/.exec(caText)?.[1];
    assert.ok(ski);
    assert.match(text, new RegExp(`Authority Key Identifier:\\s+(keyid:)?${ski}\\n`));

    const result = opensslVerify(leaf.certPem, '-purpose', 'sslserver', '-verify_hostname', 'site.test');
    assert.ok(result.ok, result.output);
    assert.equal(opensslVerify(leaf.certPem, '-verify_hostname', 'other.test').ok, false);
  });

  test('leaves for 127.0.0.1 and ::1 carry IP SANs and verify with openssl', bounded, () => {
    const v4 = testCa.minter.mint('127.0.0.1');
    assert.equal(new X509Certificate(v4.certPem).subjectAltName, 'IP Address:127.0.0.1');
    const r4 = opensslVerify(v4.certPem, '-verify_ip', '127.0.0.1');
    assert.ok(r4.ok, r4.output);
    assert.equal(opensslVerify(v4.certPem, '-verify_ip', '127.0.0.2').ok, false);

    const v6 = testCa.minter.mint('[::1]');
    assert.equal(v6.host, '::1');
    assert.equal(new X509Certificate(v6.certPem).subjectAltName, 'IP Address:0:0:0:0:0:0:0:1');
    const r6 = opensslVerify(v6.certPem, '-verify_ip', '::1');
    assert.ok(r6.ok, r6.output);
  });

  test('validity starts a day back and lasts at most 397 days', bounded, () => {
    const before = Date.now();
    const leaf = testCa.minter.mint('valid.test');
    const x = new X509Certificate(leaf.certPem);
    const from = Date.parse(x.validFrom);
    const to = Date.parse(x.validTo);
    assert.ok(from <= before - DAY + 1000 && from >= before - DAY - 60_000, x.validFrom);
    assert.ok(to - from <= 397 * DAY, `${x.validFrom} .. ${x.validTo}`);
    assert.ok(to > before + 390 * DAY, x.validTo);
    assert.ok(Math.abs(leaf.notAfter.getTime() - to) < 1000, 'notAfter reported as in the certificate');
  });

  test('serials are random, positive and 16 bytes', bounded, () => {
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = new X509Certificate(testCa.minter.mint('same.test').certPem).serialNumber;
      assert.equal(s.length, 32);
      assert.ok(parseInt(s[0], 16) < 8, s);
      serials.add(s);
    }
    assert.equal(serials.size, 50);
  });

  test('hosts are normalised, long names get no CN, junk is refused', bounded, () => {
    assert.deepEqual(parseHost('Site.TEST.'), { name: 'site.test', ip: false });
    assert.deepEqual(parseHost('127.0.0.1.'), { name: '127.0.0.1', ip: true });
    assert.deepEqual(parseHost('0:0:0:0:0:0:0:1'), { name: '::1', ip: true });
    assert.deepEqual(parseHost('::ffff:1.2.3.4'), { name: '::ffff:102:304', ip: true });
    assert.deepEqual(parseHost('fe80::1%eth0'), { name: 'fe80::1', ip: true });
    for (const bad of ['', ' ', 'a b', 'a/b', 'a..b', '.a', 'x'.repeat(254), 'ünï.test', '*.test']) {
      assert.throws(() => testCa.minter.mint(bad), TypeError, JSON.stringify(bad));
    }
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.test`;
    const leaf = testCa.minter.mint(long);
    const x = new X509Certificate(leaf.certPem);
    assert.equal(x.subject, 'O=hopscope');
    assert.equal(x.subjectAltName, `DNS:${long}`);
    assert.ok(opensslVerify(leaf.certPem, '-verify_hostname', long).ok);
  });

  test('each minter has its own leaf key, shared by all its hosts', bounded, () => {
    const other = new LeafMinter(testCa.ca);
    assert.notEqual(other.keyPem, testCa.minter.keyPem);
    assert.equal(testCa.minter.mint('a.test').keyPem, testCa.minter.mint('b.test').keyPem);
  });
});

describe('LeafMinter over real TLS', { timeout: 30_000 }, () => {
  test('an SNI server with secureContextFor is trusted by a client that trusts the CA', bounded, async () => {
    const { server, port } = await startServer({ SNICallback: testCa.minter.sniCallback('fallback.test') });
    try {
      const { socket, text } = await connect({ host: '127.0.0.1', port, servername: 'site.test', ca: testCa.caPem });
      assert.equal(socket.authorized, true);
      assert.equal(text, 'hello site.test');
      const chain = chainInfo(socket);
      assert.equal(chain.length, 2, 'leaf, then the CA sent along');
      assert.equal(chain[0].subject, 'O=hopscope, CN=site.test');
      assert.equal(chain[0].issuer, `O=hopscope, CN=${testCa.ca.commonName}`);
      assert.deepEqual(chain[0].sans, ['DNS:site.test']);
      assert.equal(chain[1].subject, chain[1].issuer);
      assert.equal(chain[1].fingerprint256, testCa.ca.cert.fingerprint256);
      assert.match(chain[0].validFrom, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
      assert.deepEqual(chain[0], certificateInfo(new X509Certificate(testCa.minter.leafFor('site.test').certPem)));
      assert.deepEqual(chain[0], certificateInfo(socket.getPeerCertificate()));
    } finally {
      server.close();
    }
  });

  test('a client that does not trust the CA, or asked for another name, is refused', bounded, async () => {
    const { server, port } = await startServer({ SNICallback: testCa.minter.sniCallback('fallback.test') });
    try {
      await assert.rejects(connect({ host: '127.0.0.1', port, servername: 'site.test' }), {
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
      });
      await assert.rejects(
        connect({
          host: '127.0.0.1',
          port,
          servername: 'site.test',
          ca: testCa.caPem,
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity('other.test', cert),
        }),
        { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
      );
    } finally {
      server.close();
    }
  });

  for (const ip of ['127.0.0.1', '::1']) {
    test(`an IP target (${ip}) verifies through its IP SAN with the default identity check`, bounded, async () => {
      // What net/ does for a CONNECT to an IP: no SNI, so the context is picked by the target.
      const server = net.createServer((raw) => {
        const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: testCa.minter.secureContextFor(ip) });
        socket.on('secure', () => socket.end(`hello ${ip}`));
        socket.on('error', () => socket.destroy());
      });
      server.listen(0, ip);
      await once(server, 'listening');
      try {
        const port = (server.address() as AddressInfo).port;
        const { socket, text } = await connect({ host: ip, port, ca: testCa.caPem });
        assert.equal(socket.authorized, true);
        assert.equal(text, `hello ${ip}`);
        const sans = chainInfo(socket)[0].sans;
        assert.deepEqual(sans, [ip === '::1' ? 'IP Address:0:0:0:0:0:0:0:1' : 'IP Address:127.0.0.1']);
        await assert.rejects(connect({ host: ip, port, ca: testCa.caPem, servername: 'site.test' }), {
          code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        });
      } finally {
        server.close();
      }
    });
  }

  test('parallel handshakes for one host share one mint; the server side sees its own leaf', bounded, async () => {
    const local: string[][] = [];
    const server = tls.createServer({ SNICallback: testCa.minter.sniCallback('fallback.test') }, (socket) => {
      local.push(localCertificateInfo(socket).map((c) => c.subject));
      socket.end('hi');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const mintsBefore = testCa.minter.stats.mints;
      const results = await Promise.all(
        Array.from({ length: 6 }, () => connect({ host: '127.0.0.1', port, servername: 'shared.test', ca: testCa.caPem })),
      );
      assert.ok(results.every((r) => r.socket.authorized && r.text === 'hi'));
      assert.equal(testCa.minter.stats.mints - mintsBefore, 1);
      assert.deepEqual(local, Array.from({ length: 6 }, () => ['O=hopscope, CN=shared.test']));
    } finally {
      server.close();
    }
  });
});

describe('LeafMinter context cache', { timeout: 30_000 }, () => {
  test('the same host (in any spelling) gets the same context, another host another', bounded, () => {
    const m = new LeafMinter(testCa.ca);
    const a = m.secureContextFor('cache.test');
    assert.equal(m.secureContextFor('cache.test'), a);
    assert.equal(m.secureContextFor('CACHE.test.'), a);
    assert.notEqual(m.secureContextFor('other.test'), a);
    assert.deepEqual(m.stats, { mints: 2, hits: 2, evictions: 0 });
  });

  test('stays bounded and evicts the least recently used', bounded, () => {
    const m = new LeafMinter(testCa.ca, { cacheSize: 3 });
    const a = m.secureContextFor('a.test');
    m.secureContextFor('b.test');
    m.secureContextFor('c.test');
    assert.equal(m.secureContextFor('a.test'), a); // a is now the most recent; b the oldest
    m.secureContextFor('d.test');
    assert.equal(m.cachedCount, 3);
    assert.equal(m.stats.evictions, 1);
    assert.equal(m.secureContextFor('a.test'), a);
    const mints = m.stats.mints;
    m.secureContextFor('b.test');
    assert.equal(m.stats.mints, mints + 1, 'b was evicted and is minted again');
    for (let i = 0; i < 20; i++) m.secureContextFor(`many-${i}.test`);
    assert.equal(m.cachedCount, 3);
  });

  test('a context is replaced a day before its certificate expires', bounded, () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const m = new LeafMinter(testCa.ca, { now: () => now });
    const first = m.secureContextFor('expiry.test');
    const leaf = m.leafFor('expiry.test');
    assert.equal(leaf.notBefore.getTime(), now - DAY);
    assert.equal(leaf.notAfter.getTime(), now + 396 * DAY);
    now = leaf.notAfter.getTime() - DAY - 1;
    assert.equal(m.secureContextFor('expiry.test'), first);
    now += 2;
    const second = m.secureContextFor('expiry.test');
    assert.notEqual(second, first);
    assert.equal(m.leafFor('expiry.test').notBefore.getTime(), now - DAY);
  });
});

describe('LeafMinter certificate info and keyed contexts', { timeout: 30_000 }, () => {
  test('what the capture records about a leaf is what X509Certificate and the TLS socket read from it', bounded, async () => {
    const m = new LeafMinter(testCa.ca);
    const hosts = ['info.test', 'Deep.Sub.Info.Test.', 'x'.repeat(70) + '.test', '127.0.0.1', '[::1]'];
    for (const host of hosts) {
      const info = m.certificateInfoFor(host);
      assert.deepEqual(info, certificateInfo(new X509Certificate(m.leafFor(host).certDer)), host);
    }
    // And what a handshake really presents (the context came from the pool of keyed contexts).
    const seen: string[] = [];
    const server = tls.createServer({ SNICallback: m.sniCallback('fallback.test') }, (socket) => {
      seen.push(localCertificateInfo(socket)[0].fingerprint256);
      socket.end('hi');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      for (const servername of ['one.test', 'two.test', 'three.test', 'four.test', 'five.test', 'six.test']) {
        const r = await connect({ host: '127.0.0.1', port, servername, ca: testCa.caPem });
        assert.ok(r.socket.authorized, `${servername}: ${String(r.socket.authorizationError)}`);
        assert.equal(r.socket.getPeerX509Certificate()?.checkHost(servername), servername);
        assert.equal(seen.at(-1), m.certificateInfoFor(servername).fingerprint256);
      }
    } finally {
      server.close();
    }
  });

  test('an upstream chain reads the same on every connection (issuers are described once)', bounded, async () => {
    const { server, port } = await startServer({ SNICallback: testCa.minter.sniCallback('chain.test') });
    try {
      const chains = [];
      for (let i = 0; i < 3; i++) {
        const { socket } = await connect({ host: '127.0.0.1', port, servername: `chain${i}.test`, ca: testCa.caPem });
        chains.push(chainInfo(socket));
      }
      for (const [i, chain] of chains.entries()) {
        assert.equal(chain.length, 2, 'leaf and CA');
        assert.deepEqual(chain[0].sans, [`DNS:chain${i}.test`]);
        assert.deepEqual(chain[1], certificateInfo(new X509Certificate(testCa.caPem)));
      }
      // The same certificate again (a new connection, the minter's cached leaf): described once.
      const { socket } = await connect({ host: '127.0.0.1', port, servername: 'chain0.test', ca: testCa.caPem });
      assert.equal(chainInfo(socket), chains[0]);
      assert.notEqual(chains[1], chains[0]);
    } finally {
      server.close();
    }
  });
});

describe('cert-info', { timeout: 30_000 }, () => {
  test('splitSans keeps quoted entries whole', bounded, () => {
    assert.deepEqual(splitSans('DNS:a.test, IP Address:127.0.0.1'), ['DNS:a.test', 'IP Address:127.0.0.1']);
    assert.deepEqual(splitSans('DNS:"a, b", DNS:c'), ['DNS:"a, b"', 'DNS:c']);
    assert.deepEqual(splitSans(undefined), []);
  });
});
