import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { parseClientHello, looksLikeTls, MAX_HELLO_BYTES, type HelloResult } from '../src/decode/client-hello.js';
import { cuttings, seededRandom } from './helpers/split.js';

/** Starts a plain TCP server, lets a real TLS client connect, returns the bytes of its hello. */
async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (socket) => {
        let bytes = Buffer.alloc(0);
        socket.on('error', () => {});
        socket.on('data', (data) => {
          bytes = Buffer.concat([bytes, data]);
          if (parseClientHello(bytes).status === 'need-more') return;
          socket.destroy();
          resolve(bytes);
        });
      });
      const client = tls.connect({ host: '127.0.0.1', port, ...options });
      client.on('error', () => {}); // we hang up mid-handshake on purpose
      client.on('close', () => reject(new Error('client closed before its hello was complete')));
    });
  } finally {
    server.close();
  }
}

/** Feeds the chunks as a growing buffer: need-more until the last chunk, then the final answer. */
function parseGrowing(chunks: Buffer[]): HelloResult {
  let bytes = Buffer.alloc(0);
  let result: HelloResult = { status: 'need-more' };
  for (const [i, chunk] of chunks.entries()) {
    bytes = Buffer.concat([bytes, chunk]);
    result = parseClientHello(bytes);
    if (result.status !== 'need-more' && i < chunks.length - 1 && chunks.slice(i + 1).some((c) => c.length > 0)) {
      assert.fail(`answered ${result.status} before the hello was complete`);
    }
  }
  return result;
}

/** Re-frames the handshake message of a single-record hello into records of `size` bytes. */
function reframe(hello: Buffer, size: number): Buffer {
  const message = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const records: Buffer[] = [];
  for (let i = 0; i < message.length; i += size) {
    const fragment = message.subarray(i, i + size);
    records.push(Buffer.from([0x16, 0x03, 0x01, fragment.length >> 8, fragment.length & 0xff]), fragment);
  }
  return Buffer.concat(records);
}

// ---- a small encoder for hand-built hellos ------------------------------------------------

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const vec8 = (b: Buffer) => Buffer.concat([Buffer.from([b.length]), b]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const ext = (type: number, data: Buffer) => Buffer.concat([u16(type), vec16(data)]);

function sniExt(...names: Array<[type: number, name: string]>): Buffer {
  return ext(0, vec16(Buffer.concat(names.map(([t, n]) => Buffer.concat([Buffer.from([t]), vec16(Buffer.from(n))])))));
}
function alpnExt(...protocols: Buffer[]): Buffer {
  return ext(16, vec16(Buffer.concat(protocols.map(vec8))));
}
function versionsExt(...versions: number[]): Buffer {
  return ext(43, vec8(Buffer.concat(versions.map(u16))));
}

interface HelloParts {
  version?: number;
  sessionId?: Buffer;
  suites?: Buffer;
  compression?: Buffer;
  /** Raw extensions block including its length; `null` for none at all. */
  extensions?: Buffer | null;
}

function helloBody(parts: HelloParts = {}): Buffer {
  return Buffer.concat([
    u16(parts.version ?? 0x0303),
    Buffer.alloc(32, 7),
    vec8(parts.sessionId ?? Buffer.alloc(32, 1)),
    parts.suites ?? vec16(Buffer.from([0x13, 0x01, 0x13, 0x02])),
    parts.compression ?? vec8(Buffer.from([0])),
    parts.extensions === null ? Buffer.alloc(0) : (parts.extensions ?? vec16(sniExt([0, 'a.test']))),
  ]);
}

function record(body: Buffer, handshakeType = 1): Buffer {
  const message = Buffer.concat([Buffer.from([handshakeType, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(message.length), message]);
}

function withExtensions(...extensions: Buffer[]): Buffer {
  return record(helloBody({ extensions: vec16(Buffer.concat(extensions)) }));
}

function expectError(bytes: Buffer, code: string): void {
  const result = parseClientHello(bytes);
  assert.equal(result.status, 'error', `expected ${code}, got ${JSON.stringify(result)}`);
  assert.equal(result.status === 'error' && result.code, code);
}

describe('parseClientHello with hellos from a real client (Node tls)', { timeout: 10_000 }, () => {
  let withSniAndAlpn: Buffer;
  let emptyServername: Buffer;
  let ipHost: Buffer;
  let withoutAlpn: Buffer;

  before(async () => {
    withSniAndAlpn = await captureHello({ servername: 'hello.example.test', ALPNProtocols: ['h2', 'http/1.1'] });
    emptyServername = await captureHello({ servername: '', ALPNProtocols: ['http/1.1'] });
    ipHost = await captureHello({ ALPNProtocols: ['h2'] });
    withoutAlpn = await captureHello({ servername: 'plain.example.test' });
  });

  test('SNI and ALPN [h2, http/1.1] at every split point', () => {
    for (const chunks of cuttings(withSniAndAlpn)) {
      const result = parseGrowing(chunks);
      assert.equal(result.status, 'ok');
      if (result.status !== 'ok') return;
      assert.equal(result.hello.sni, 'hello.example.test');
      assert.deepEqual(result.hello.alpn, ['h2', 'http/1.1']);
      assert.equal(result.hello.version, 0x0303);
      assert.ok(result.hello.supportedVersions.includes(0x0304), 'Node offers TLS 1.3');
    }
  });

  test('no SNI when servername is empty or the host is an IP address', () => {
    for (const [bytes, alpn] of [
      [emptyServername, ['http/1.1']],
      [ipHost, ['h2']],
    ] as const) {
      for (const chunks of cuttings(bytes)) {
        const result = parseGrowing(chunks);
        assert.equal(result.status, 'ok');
        if (result.status !== 'ok') return;
        assert.equal(result.hello.sni, null);
        assert.deepEqual(result.hello.alpn, alpn);
      }
    }
  });

  test('no ALPN offered gives an empty list', () => {
    for (const chunks of cuttings(withoutAlpn)) {
      const result = parseGrowing(chunks);
      assert.equal(result.status, 'ok');
      if (result.status !== 'ok') return;
      assert.equal(result.hello.sni, 'plain.example.test');
      assert.deepEqual(result.hello.alpn, []);
    }
  });

  test('a hello spread over several records is reassembled', () => {
    const whole = parseClientHello(withSniAndAlpn);
    for (const size of [1, 2, 3, 4, 5, 17, 100, 511]) {
      const framed = reframe(withSniAndAlpn, size);
      assert.deepEqual(parseClientHello(framed), whole, `records of ${size} bytes`);
      for (let cut = 0; cut < framed.length; cut++) {
        assert.equal(parseClientHello(framed.subarray(0, cut)).status, 'need-more', `records of ${size}, cut at ${cut}`);
      }
    }
  });

  test('bytes after the hello (a following record) do not change the answer', () => {
    const extra = Buffer.concat([withSniAndAlpn, Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01])]);
    assert.deepEqual(parseClientHello(extra), parseClientHello(withSniAndAlpn));
  });

  test('bounded fuzz: mutated real hellos only ever give a result, never an exception', () => {
    const random = seededRandom(42);
    const seeds = [withSniAndAlpn, emptyServername, withoutAlpn, reframe(withSniAndAlpn, 64)];
    const started = Date.now();
    const seen = new Set<string>();
    for (let i = 0; i < 4000 && Date.now() - started < 2500; i++) {
      const bytes = Buffer.from(seeds[i % seeds.length]);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? Math.floor(random() * bytes.length) : bytes.length;
      const result = parseClientHello(bytes.subarray(0, cut));
      assert.ok(['need-more', 'not-tls', 'ok', 'error'].includes(result.status));
      seen.add(result.status === 'error' ? result.code : result.status);
    }
    assert.ok(seen.has('ok') && seen.has('need-more') && seen.size > 3, `outcomes seen: ${[...seen].join(', ')}`);
  });
});

describe('parseClientHello on hand-built input', { timeout: 10_000 }, () => {
  test('decides not-tls from the first two bytes', () => {
    assert.deepEqual(parseClientHello(Buffer.alloc(0)), { status: 'need-more' });
    assert.deepEqual(parseClientHello(Buffer.from([0x16])), { status: 'need-more' });
    assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { status: 'not-tls' });
    assert.deepEqual(parseClientHello(Buffer.from([0x17])), { status: 'not-tls' });
    assert.deepEqual(parseClientHello(Buffer.from([0x16, 0x02])), { status: 'not-tls' });
    assert.deepEqual(parseClientHello(Buffer.from('PRI * HTTP/2.0')), { status: 'not-tls' });
    assert.equal(looksLikeTls(0x16), true);
    assert.equal(looksLikeTls(0x47), false);
  });

  test('a minimal hello with SNI, ALPN and supported_versions, GREASE ignored', () => {
    const bytes = withExtensions(
      ext(0x0a0a, Buffer.alloc(0)), // GREASE extension
      sniExt([0, 'x.test']),
      alpnExt(Buffer.from([0x3a, 0x3a]), Buffer.from('h2'), Buffer.from('http/1.1')),
      versionsExt(0x2a2a, 0x0304, 0x0303),
      ext(0xfe0d, Buffer.from('unknown extension body')),
    );
    for (const chunks of cuttings(bytes)) {
      assert.deepEqual(parseGrowing(chunks), {
        status: 'ok',
        hello: { sni: 'x.test', alpn: ['h2', 'http/1.1'], version: 0x0303, supportedVersions: [0x0304, 0x0303] },
      });
    }
  });

  test('old hellos: no extensions at all, and non host_name server names are skipped', () => {
    const bare = parseClientHello(record(helloBody({ version: 0x0301, extensions: null })));
    assert.deepEqual(bare, { status: 'ok', hello: { sni: null, alpn: [], version: 0x0301, supportedVersions: [] } });
    const other = parseClientHello(withExtensions(sniExt([7, 'ignored'], [0, 'real.test'])));
    assert.equal(other.status === 'ok' && other.hello.sni, 'real.test');
  });

  test('record-level faults', () => {
    const good = withExtensions(sniExt([0, 'a.test']));
    const firstPart = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04]), good.subarray(5, 9)]);
    expectError(Buffer.concat([firstPart, Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00])]), 'bad-record');
    expectError(Buffer.concat([firstPart, Buffer.from([0x16, 0x04])]), 'bad-record');
    expectError(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00]), 'bad-record');
    expectError(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01]), 'bad-record');
  });

  test('not a ClientHello, and too large, are known from the first bytes', () => {
    expectError(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x50, 0x02]), 'not-client-hello');
    expectError(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x01]), 'hello-too-large');
    const atLimit = MAX_HELLO_BYTES;
    const header = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, atLimit >> 16, (atLimit >> 8) & 0xff, atLimit & 0xff]);
    assert.equal(parseClientHello(header).status, 'need-more');
  });

  test('hello body faults have stable codes', () => {
    expectError(record(helloBody({ sessionId: Buffer.alloc(33) })), 'bad-hello');
    expectError(record(helloBody({ suites: vec16(Buffer.from([0x13, 0x01, 0x13])) })), 'bad-hello');
    expectError(record(helloBody({ compression: vec8(Buffer.alloc(0)) })), 'bad-hello');
    expectError(record(helloBody({ extensions: Buffer.concat([u16(40), sniExt([0, 'a.test'])]) })), 'truncated');
    expectError(record(helloBody({ extensions: Buffer.concat([u16(2), sniExt([0, 'a.test'])]) })), 'bad-hello');
    expectError(record(helloBody().subarray(0, 20)), 'truncated');
  });

  test('extension faults have stable codes', () => {
    expectError(withExtensions(ext(0, Buffer.from([0x00, 0x09, 0x00]))), 'bad-extension');
    expectError(withExtensions(ext(0, vec16(Buffer.alloc(0)))), 'bad-extension');
    expectError(withExtensions(sniExt([0, ''])), 'bad-extension');
    expectError(withExtensions(sniExt([0, 'a b'])), 'bad-extension');
    expectError(withExtensions(sniExt([0, 'a.test'], [0, 'b.test'])), 'bad-extension');
    expectError(withExtensions(alpnExt(Buffer.alloc(0))), 'bad-extension');
    expectError(withExtensions(ext(16, vec16(Buffer.alloc(0)))), 'bad-extension');
    expectError(withExtensions(ext(43, vec8(Buffer.from([0x03])))), 'bad-extension');
    expectError(withExtensions(ext(16, Buffer.from([0x00, 0x05, 0x02, 0x68]))), 'bad-extension');
    expectError(withExtensions(sniExt([0, 'a.test']), sniExt([0, 'a.test'])), 'duplicate-extension');
  });
});
