// Fuzzing the ClientHello parser with random bytes and mutated real hellos (Node's TLS client,
// re-framed over several records): it never throws, every answer is one of its own, an accepted
// hello holds only sane values, and an answer once given never changes as more bytes arrive (the
// tunnel asks again after every chunk and acts on the first answer that is not need-more).
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { parseClientHello, MAX_HELLO_BYTES, type HelloErrorCode, type HelloResult } from '../src/decode/client-hello.js';
import { seededRandom } from './helpers/split.js';

const TIME_BUDGET_MS = 2_500;
const CODES = new Set<HelloErrorCode>(['bad-record', 'not-client-hello', 'hello-too-large', 'truncated', 'bad-hello', 'bad-extension', 'duplicate-extension']);

async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    return await new Promise<Buffer>((resolve) => {
      server.once('connection', (socket) => {
        let bytes = Buffer.alloc(0);
        socket.on('error', () => {});
        socket.on('data', (data: Buffer) => {
          bytes = Buffer.concat([bytes, data]);
          if (parseClientHello(bytes).status !== 'ok') return;
          socket.destroy();
          resolve(bytes);
        });
      });
      tls.connect({ host: '127.0.0.1', port, ...options }).on('error', () => {});
    });
  } finally {
    server.close();
  }
}

/** The handshake message of a single-record hello, re-framed into records of `size` bytes. */
function reframe(hello: Buffer, size: number): Buffer {
  const message = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const records: Buffer[] = [];
  for (let i = 0; i < message.length; i += size) {
    const fragment = message.subarray(i, i + size);
    records.push(Buffer.from([0x16, 0x03, 0x01, fragment.length >> 8, fragment.length & 0xff]), fragment);
  }
  return Buffer.concat(records);
}

type Random = () => number;
const int = (random: Random, n: number) => Math.floor(random() * n);

/** Byte flips, length fields nudged (the parser's weak spots), cuts, repeats and insertions. */
function mutate(random: Random, input: Buffer): Buffer {
  let out = Buffer.from(input);
  for (let m = 1 + int(random, 3); m > 0 && out.length > 0; m--) {
    const at = int(random, out.length);
    switch (int(random, 6)) {
      case 0:
        out[at] ^= 1 << int(random, 8);
        break;
      case 1:
        out[at] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x16, 0x03][int(random, 7)];
        break;
      case 2: // a 16-bit big-endian field nudged up or down a little, as a length would be
        if (at + 1 < out.length) out.writeUInt16BE((out.readUInt16BE(at) + [1, -1, 2, 0x100, -0x100][int(random, 5)] + 0x10000) & 0xffff, at);
        break;
      case 3:
        out = out.subarray(0, at);
        break;
      case 4: {
        const len = 1 + int(random, 40);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
        break;
      }
      default:
        out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(random, 6) }, () => int(random, 256))), out.subarray(at)]);
    }
  }
  return out;
}

/** The properties every answer must have; returns the outcome's name. */
function check(bytes: Buffer, label: string): string {
  let result: HelloResult;
  try {
    result = parseClientHello(bytes);
  } catch (err) {
    assert.fail(`${label}: parseClientHello threw ${String(err)}`);
  }
  switch (result.status) {
    case 'need-more':
    case 'not-tls':
      return result.status;
    case 'error':
      assert.ok(CODES.has(result.code), `${label}: unknown code ${result.code}`);
      assert.ok(result.message.length > 0 && result.message.length < 300, `${label}: message`);
      return result.code;
    case 'ok': {
      const { sni, alpn, supportedVersions } = result.hello;
      if (sni !== null) assert.match(sni, /^[\x21-\x7e]{1,65535}$/, `${label}: sni`);
      assert.ok(alpn.every((p) => p.length > 0 && p.length < 256), `${label}: alpn`);
      assert.ok(supportedVersions.every((v) => !((v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff))), `${label}: GREASE kept`);
      return 'ok';
    }
  }
}

/** An answer given for a prefix is the answer for the whole: more bytes never change a decision. */
function checkFinal(bytes: Buffer, random: Random, label: string): void {
  const whole = parseClientHello(bytes);
  for (let i = 0; i < 4; i++) {
    const cut = int(random, bytes.length + 1);
    const early = parseClientHello(bytes.subarray(0, cut));
    if (early.status === 'need-more') continue;
    assert.deepEqual(whole, early, `${label}: answered ${early.status} after ${cut} bytes, then changed its mind`);
  }
}

function fuzzLoop(iterations: number, body: (random: Random, label: string) => void): number {
  const started = performance.now();
  let done = 0;
  for (; done < iterations && performance.now() - started < TIME_BUDGET_MS; done++) {
    const seed = 0x5eed ^ (done * 2654435761);
    body(seededRandom(seed), `iteration ${done} (seed ${seed >>> 0})`);
  }
  assert.ok(done >= Math.min(iterations, 200), `only ${done} iterations ran within the time budget`);
  return done;
}

describe('fuzz: ClientHello parser', { timeout: 10_000 }, () => {
  let seeds: Buffer[];

  before(async () => {
    const a = await captureHello({ servername: 'fuzz.example.test', ALPNProtocols: ['h2', 'http/1.1'] });
    const b = await captureHello({ servername: 'x.test', maxVersion: 'TLSv1.2' });
    const c = await captureHello({ ALPNProtocols: ['http/1.1'] });
    seeds = [a, b, c, reframe(a, 1), reframe(a, 7), reframe(b, 200)];
  });

  test('random bytes, with and without a handshake record header in front', () => {
    const outcomes = new Set<string>();
    fuzzLoop(3000, (random, label) => {
      const body = Buffer.from(Array.from({ length: int(random, 600) }, () => int(random, 256)));
      const bytes = random() < 0.5 ? body : Buffer.concat([Buffer.from([0x16, 0x03, int(random, 4), int(random, 256), int(random, 256), 0x01]), body]);
      outcomes.add(check(bytes, label));
      checkFinal(bytes, random, label);
    });
    for (const outcome of ['not-tls', 'need-more', 'bad-record']) assert.ok(outcomes.has(outcome), `never saw ${outcome}`);
  });

  test('mutated real hellos, single-record and re-framed', (t) => {
    const outcomes = new Set<string>();
    const runs = fuzzLoop(4000, (random, label) => {
      const bytes = mutate(random, seeds[int(random, seeds.length)]);
      outcomes.add(check(bytes, label));
      checkFinal(bytes, random, label);
    });
    // Mutations of the length fields reach deep into the structure, and many hellos still parse.
    for (const outcome of ['ok', 'need-more', 'truncated', 'bad-record', 'bad-hello', 'bad-extension']) {
      assert.ok(outcomes.has(outcome), `never saw ${outcome}: ${[...outcomes].join(', ')}`);
    }
    t.diagnostic(`${runs} runs, outcomes: ${[...outcomes].sort().join(', ')}`);
  });

  test('a hello announced over the limit is refused from its first 9 bytes, whatever follows', () => {
    const random = seededRandom(7);
    fuzzLoop(500, (_r, label) => {
      const declared = MAX_HELLO_BYTES + 1 + int(random, 0xffffff - MAX_HELLO_BYTES);
      const head = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, declared >> 16, (declared >> 8) & 0xff, declared & 0xff]);
      const result = parseClientHello(Buffer.concat([head, Buffer.alloc(int(random, 100))]));
      assert.equal(result.status === 'error' && result.code, 'hello-too-large', label);
    });
  });
});
