// The SOCKS5 message reader and the reply encoders (RFC 1928, RFC 1929): each handshake replayed
// at every split point and in random chunks gives the same messages, garbage gives the same
// Socks5Error wherever it is cut, and random input lets nothing else escape.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Socks5Error,
  Socks5Reader,
  SOCKS4_REJECTED,
  encodeAuthStatus,
  encodeMethodChoice,
  encodeReply,
  type Socks5Credentials,
  type Socks5Greeting,
  type Socks5Request,
} from '../src/net/socks5-messages.js';
import { formatIpv6, ipv4Bytes, ipv6Bytes } from '../src/net/socks5-address.js';
import { cuttings, seededRandom } from './helpers/split.js';

// ---- client messages, built by hand ---------------------------------------------------------

const greeting = (...methods: number[]) => Buffer.from([5, methods.length, ...methods]);
const userPass = (user: string, pass: string, version = 1) => {
  const u = Buffer.from(user, 'utf8');
  const p = Buffer.from(pass, 'utf8');
  return Buffer.concat([Buffer.from([version, u.length]), u, Buffer.from([p.length]), p]);
};
const portBytes = (port: number) => Buffer.from([port >> 8, port & 0xff]);
const request = (command: number, type: number, address: Buffer, port: number, reserved = 0) =>
  Buffer.concat([Buffer.from([5, command, reserved, type]), address, portBytes(port)]);
const domain = (name: string) => Buffer.concat([Buffer.from([Buffer.byteLength(name, 'latin1')]), Buffer.from(name, 'latin1')]);

interface Outcome {
  greeting: Socks5Greeting | null;
  credentials: Socks5Credentials | null;
  request: Socks5Request | null;
  rest: string;
  error: string | null;
}

/** Feeds chunks the way the handler does: after each one, read whatever the handshake expects next. */
function replay(chunks: Buffer[], withAuth: boolean): Outcome {
  const reader = new Socks5Reader();
  const out: Outcome = { greeting: null, credentials: null, request: null, rest: '', error: null };
  let phase: 'greeting' | 'credentials' | 'request' | 'done' = 'greeting';
  try {
    for (const chunk of chunks) {
      reader.push(chunk);
      for (;;) {
        if (phase === 'greeting') {
          const g = reader.readGreeting();
          if (!g) break;
          out.greeting = g;
          phase = withAuth ? 'credentials' : 'request';
        } else if (phase === 'credentials') {
          const c = reader.readCredentials();
          if (!c) break;
          out.credentials = c;
          phase = 'request';
        } else if (phase === 'request') {
          const r = reader.readRequest();
          if (!r) break;
          out.request = r;
          phase = 'done';
        } else {
          break;
        }
      }
    }
    if (phase === 'done') out.rest = reader.takeRest().toString('latin1');
  } catch (err) {
    if (!(err instanceof Socks5Error)) throw err;
    out.error = err.code;
  }
  return out;
}

function assertSameEveryCut(bytes: Buffer, withAuth: boolean, expected: Partial<Outcome>): void {
  for (const chunks of cuttings(bytes)) {
    const got = replay(chunks, withAuth);
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(got[key as keyof Outcome], value, `${key} with cuts ${chunks.map((c) => c.length).join('+')}`);
    }
  }
}

describe('SOCKS5 reader: handshakes cut anywhere', { timeout: 10_000 }, () => {
  test('no auth, CONNECT to an IPv4 address', () => {
    const bytes = Buffer.concat([greeting(0), request(1, 1, Buffer.from([127, 0, 0, 1]), 8080)]);
    assertSameEveryCut(bytes, false, {
      greeting: { methods: [0] },
      request: { command: 1, addressType: 1, host: '127.0.0.1', port: 8080 },
      rest: '',
      error: null,
    });
  });

  test('username/password, CONNECT to a domain, with data sent ahead of the answers', () => {
    const bytes = Buffer.concat([greeting(0, 2), userPass('alice', 'pä:ss'), request(1, 3, domain('api.example.test'), 443), Buffer.from('\x16\x03\x01hello')]);
    assertSameEveryCut(bytes, true, {
      greeting: { methods: [0, 2] },
      credentials: { user: 'alice', pass: 'pä:ss' },
      request: { command: 1, addressType: 3, host: 'api.example.test', port: 443 },
      rest: '\x16\x03\x01hello',
      error: null,
    });
  });

  test('CONNECT to an IPv6 address comes out as RFC 5952 text', () => {
    const bytes = Buffer.concat([greeting(0), request(1, 4, ipv6Bytes('::1')!, 65535)]);
    assertSameEveryCut(bytes, false, { request: { command: 1, addressType: 4, host: '::1', port: 65535 }, error: null });
  });

  test('BIND and UDP ASSOCIATE parse (the handler answers 0x07)', () => {
    for (const command of [2, 3, 9]) {
      const bytes = Buffer.concat([greeting(0), request(command, 1, Buffer.from([10, 1, 2, 3]), 53)]);
      assertSameEveryCut(bytes, false, { request: { command, addressType: 1, host: '10.1.2.3', port: 53 }, error: null });
    }
  });

  test('the longest messages: 255 methods, 255-byte user and password, 255-byte domain', () => {
    const methods = Array.from({ length: 255 }, (_, i) => i);
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
    const bytes = Buffer.concat([greeting(...methods), userPass('u'.repeat(255), 'p'.repeat(255)), request(1, 3, domain(name), 80)]);
    assertSameEveryCut(bytes, true, {
      greeting: { methods },
      credentials: { user: 'u'.repeat(255), pass: 'p'.repeat(255) },
      request: { command: 1, addressType: 3, host: name, port: 80 },
      error: null,
    });
  });

  test('an empty method list and an empty user name are read (the handler refuses them)', () => {
    assertSameEveryCut(greeting(), false, { greeting: { methods: [] }, error: null });
    assertSameEveryCut(Buffer.concat([greeting(2), userPass('', '')]), true, { credentials: { user: '', pass: '' }, error: null });
  });

  test('an incomplete message is never returned', () => {
    const bytes = Buffer.concat([greeting(0), request(1, 3, domain('site.test'), 80)]);
    for (let n = 0; n < bytes.length; n++) {
      const got = replay([bytes.subarray(0, n)], false);
      assert.equal(got.request, null, `after ${n} bytes`);
      assert.equal(got.error, null);
    }
  });
});

describe('SOCKS5 reader: garbage', { timeout: 10_000 }, () => {
  const cases: Array<[string, Buffer, boolean, string]> = [
    ['a request with the wrong version', Buffer.concat([greeting(0), Buffer.from('GET / HTTP/1.1\r\n\r\n')]), false, 'bad-version'],
    ['a SOCKS4 greeting', Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]), false, 'bad-version'],
    ['a non-zero reserved octet', Buffer.concat([greeting(0), request(1, 1, Buffer.from([1, 2, 3, 4]), 80, 7)]), false, 'bad-reserved'],
    ['an unknown address type', Buffer.concat([greeting(0), request(1, 2, Buffer.from([1, 2, 3, 4]), 80)]), false, 'bad-address-type'],
    ['an empty domain name', Buffer.concat([greeting(0), request(1, 3, Buffer.from([0]), 80)]), false, 'bad-domain'],
    ['a domain with a control character', Buffer.concat([greeting(0), request(1, 3, domain('a\nb'), 80)]), false, 'bad-domain'],
    ['a domain with a space', Buffer.concat([greeting(0), request(1, 3, domain('a b'), 80)]), false, 'bad-domain'],
    ['port 0', Buffer.concat([greeting(0), request(1, 1, Buffer.from([1, 2, 3, 4]), 0)]), false, 'bad-port'],
    ['a username/password message with version 5', Buffer.concat([greeting(2), userPass('a', 'b', 5)]), true, 'bad-auth-version'],
  ];
  for (const [name, bytes, withAuth, code] of cases) {
    test(`${name}: ${code}, wherever the bytes are cut`, () => {
      assertSameEveryCut(bytes, withAuth, { request: null, error: code });
    });
  }

  test('the reader holds a bounded amount', () => {
    const reader = new Socks5Reader(1024);
    reader.push(Buffer.alloc(1000, 5));
    assert.throws(() => reader.push(Buffer.alloc(25)), (err: unknown) => err instanceof Socks5Error && err.code === 'too-much-data');
    assert.equal(reader.buffered, 1000);
  });

  test('random input: only Socks5Error escapes and the outcome does not depend on cuts', { timeout: 5_000 }, () => {
    const random = seededRandom(1928);
    const started = Date.now();
    for (let i = 0; i < 3000 && Date.now() - started < 2500; i++) {
      // Mostly plausible handshakes with a byte or two changed, sometimes pure noise.
      let bytes: Buffer;
      if (random() < 0.3) {
        bytes = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      } else {
        bytes = Buffer.concat([greeting(0, 2), userPass('user', 'secret'), request(1 + Math.floor(random() * 3), 3, domain('x.test'), 443)]);
        for (let flips = 1 + Math.floor(random() * 2); flips > 0; flips--) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      const withAuth = random() < 0.5;
      const whole = replay([bytes], withAuth);
      const cut = Math.floor(random() * (bytes.length + 1));
      assert.deepEqual(replay([bytes.subarray(0, cut), bytes.subarray(cut)], withAuth), whole);
      assert.deepEqual(replay([...bytes].map((b) => Buffer.from([b])), withAuth), whole);
    }
  });
});

describe('SOCKS5 answers and addresses', { timeout: 10_000 }, () => {
  test('method choice, RFC 1929 status, SOCKS4 refusal', () => {
    assert.deepEqual([...encodeMethodChoice(0x00)], [5, 0]);
    assert.deepEqual([...encodeMethodChoice(0xff)], [5, 0xff]);
    assert.deepEqual([...encodeAuthStatus(true)], [1, 0]);
    assert.deepEqual([...encodeAuthStatus(false)], [1, 1]);
    assert.deepEqual([...SOCKS4_REJECTED], [0, 0x5b, 0, 0, 0, 0, 0, 0]);
  });

  test('replies carry the bound address as IPv4 or IPv6', () => {
    assert.deepEqual([...encodeReply(0, { address: '127.0.0.1', port: 0x1f90 })], [5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]);
    assert.deepEqual([...encodeReply(0, { address: '::ffff:10.0.0.2', port: 1 })], [5, 0, 0, 1, 10, 0, 0, 2, 0, 1]);
    assert.deepEqual([...encodeReply(0, { address: '::1', port: 2 })], [5, 0, 0, 4, ...Array(15).fill(0), 1, 0, 2]);
    assert.deepEqual([...encodeReply(5)], [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...encodeReply(1, { address: 'not-an-ip', port: 9 })], [5, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
  });

  test('IPv6 text follows RFC 5952 and round-trips', () => {
    const cases: Array<[string, string]> = [
      ['::1', '::1'],
      ['::', '::'],
      ['2001:DB8::1', '2001:db8::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group stays
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of equal runs
      ['fe80:0:0:0:1:0:0:0', 'fe80::1:0:0:0'], // equal runs: the first
      ['1:0:0:1:0:0:0:0', '1:0:0:1::'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['fe80::1%eth0', 'fe80::1'],
    ];
    for (const [input, text] of cases) {
      const bytes = ipv6Bytes(input);
      assert.ok(bytes, input);
      assert.equal(formatIpv6(bytes), text, input);
      assert.deepEqual(ipv6Bytes(text), bytes, `${text} round-trips`);
    }
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1:2:3:4:5:6:7::8', '::1.2.3']) {
      assert.equal(ipv6Bytes(bad), null, bad);
    }
    assert.deepEqual(ipv4Bytes('192.0.2.255'), Buffer.from([192, 0, 2, 255]));
    for (const bad of ['1.2.3', '1.2.3.256', '1.2.3.x', '']) assert.equal(ipv4Bytes(bad), null, bad);
  });
});
