// Fuzzing the HTTP/1 decoder with random bytes and mutated valid messages (requests and responses:
// lengths, chunked bodies with trailers, 1xx, HEAD, an upgrade, pipelining). Only Http1DecodeError
// escapes; the events do not depend on how the bytes were cut; no body byte is invented; a failed
// decoder stays failed; and what it holds while waiting for a line is bounded by maxHeaderBytes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Http1Decoder, Http1DecodeError, type Http1Event, type Http1Kind } from '../src/decode/http1-decoder.js';
import { randomChunks, seededRandom } from './helpers/split.js';

const TIME_BUDGET_MS = 2_500;
const MAX_HEADER_BYTES = 512;

interface Seed {
  kind: Http1Kind;
  wire: string;
  /** Methods the responses answer, in order (response seeds). */
  expect?: string[];
}

const SEEDS: Seed[] = [
  { kind: 'request', wire: 'GET /a HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\n\r\n' },
  { kind: 'request', wire: 'POST /up HTTP/1.1\r\nHost: x.test\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: x.test\r\n\r\n' },
  { kind: 'request', wire: 'PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n' },
  { kind: 'request', wire: 'GET /chat HTTP/1.1\r\nHost: x.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85abcd' },
  { kind: 'request', wire: 'GET /old HTTP/1.0\r\nUser-Agent: folded\r\n  value\r\n\r\n' },
  { kind: 'response', wire: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n', expect: ['GET', 'GET'] },
  { kind: 'response', wire: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', expect: ['POST'] },
  { kind: 'response', wire: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', expect: ['HEAD'] },
  { kind: 'response', wire: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi', expect: ['GET'] },
  { kind: 'response', wire: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', expect: ['GET'] },
];

/** Fragments that make interesting framing when spliced in. */
const SPLICES = [
  '\r\n', '\n', '\r', ' ', '\t', ':', '0', 'f', ';', '\x00', '\x7f',
  'Content-Length: 4\r\n', 'Content-Length: 99999999999999999999\r\n', 'Transfer-Encoding: chunked\r\n',
  'Transfer-Encoding: gzip\r\n', 'fffffffffffffffff\r\n', ' folded\r\n', 'HTTP/2.0', 'Upgrade: h2c\r\n',
  `X-Big: ${'b'.repeat(600)}\r\n`,
];

type Random = () => number;
const int = (random: Random, n: number) => Math.floor(random() * n);

function mutate(random: Random, input: Buffer): Buffer {
  let out = Buffer.from(input);
  for (let m = 1 + int(random, 3); m > 0; m--) {
    const at = int(random, out.length + 1);
    switch (int(random, 5)) {
      case 0:
        if (out.length > 0) out[Math.min(at, out.length - 1)] ^= 1 << int(random, 8);
        break;
      case 1:
        out = out.subarray(0, at);
        break;
      case 2: {
        const len = 1 + int(random, 30);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
        break;
      }
      case 3:
        out = Buffer.concat([out.subarray(0, at), Buffer.from(SPLICES[int(random, SPLICES.length)], 'latin1'), out.subarray(at)]);
        break;
      default:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(random, 8))]);
    }
  }
  return out;
}

/** Events made comparable (adjacent body chunks merged), the error code last, and the body bytes. */
interface Outcome {
  events: unknown[];
  error: string | null;
  bodyBytes: number;
}

function decode(kind: Http1Kind, expect: string[], chunks: Buffer[], end: boolean, label: string): Outcome {
  const decoder = new Http1Decoder(kind, { maxHeaderBytes: MAX_HEADER_BYTES });
  for (const method of expect) decoder.expect(method);
  const outcome: Outcome = { events: [], error: null, bodyBytes: 0 };
  let switched = false;
  const add = (events: Http1Event[]) => {
    for (const e of events) {
      const last = outcome.events.at(-1) as { type?: string; text?: string } | undefined;
      if (e.type === 'body') {
        outcome.bodyBytes += e.chunk.length;
        if (last?.type === 'body') last.text += e.chunk.toString('latin1');
        else outcome.events.push({ type: 'body', text: e.chunk.toString('latin1') });
      } else if (e.type === 'switched') {
        switched = true;
        outcome.events.push({ type: 'switched' });
      } else {
        if (e.type === 'request-head' || e.type === 'response-head' || e.type === 'trailers') {
          const size = e.headers.reduce((n, [name, value]) => n + name.length + value.length, 0);
          assert.ok(size <= MAX_HEADER_BYTES, `${label}: a head larger than the limit was accepted`);
        }
        outcome.events.push(e);
      }
    }
  };
  try {
    for (const chunk of chunks) {
      add(decoder.push(chunk));
      if (switched) break; // the rest belongs to the new protocol
    }
    if (decoder.awaitingSwitch) add(decoder.resume());
    if (end) add(decoder.end());
  } catch (err) {
    if (!(err instanceof Http1DecodeError)) assert.fail(`${label}: ${String(err)}\n${(err as Error).stack}`);
    add(err.events);
    outcome.error = err.code;
    // A failed decoder stays failed, with the same code.
    assert.throws(() => decoder.push(Buffer.from('x')), (e: unknown) => e instanceof Http1DecodeError && e.code === err.code);
  }
  return outcome;
}

function fuzzLoop(iterations: number, body: (random: Random, label: string) => void): number {
  const started = performance.now();
  let done = 0;
  for (; done < iterations && performance.now() - started < TIME_BUDGET_MS; done++) {
    const seed = 0x1f1 ^ (done * 2654435761);
    body(seededRandom(seed), `iteration ${done} (seed ${seed >>> 0})`);
  }
  assert.ok(done >= Math.min(iterations, 200), `only ${done} iterations ran within the time budget`);
  return done;
}

describe('fuzz: HTTP/1 decoder', { timeout: 10_000 }, () => {
  test('mutated valid messages: same events however cut, only Http1DecodeError escapes', (t) => {
    const outcomes = new Set<string>();
    const runs = fuzzLoop(3000, (random, label) => {
      const seed = SEEDS[int(random, SEEDS.length)];
      const bytes = mutate(random, Buffer.from(seed.wire, 'latin1'));
      const end = random() < 0.5;
      const whole = decode(seed.kind, seed.expect ?? [], [bytes], end, label);
      const cut = decode(seed.kind, seed.expect ?? [], randomChunks(bytes, random, 1 + int(random, 20)), end, label);
      assert.deepEqual(cut, whole, `${label}: the events depend on the cutting`);
      assert.ok(whole.bodyBytes <= bytes.length, `${label}: more body out than bytes in`);
      outcomes.add(whole.error ?? 'ok');
    });
    for (const code of ['ok', 'bad-start-line', 'bad-header', 'bad-chunk-size', 'bad-content-length', 'truncated', 'headers-too-large']) {
      assert.ok(outcomes.has(code), `never saw ${code}: ${[...outcomes].join(', ')}`);
    }
    t.diagnostic(`${runs} runs, outcomes: ${[...outcomes].sort().join(', ')}`);
  });

  test('random bytes, after a valid start line or none', () => {
    fuzzLoop(2000, (random, label) => {
      const kind: Http1Kind = random() < 0.5 ? 'request' : 'response';
      const noise = Buffer.from(Array.from({ length: int(random, 400) }, () => int(random, 256)));
      const start = random() < 0.5 ? '' : kind === 'request' ? 'GET / HTTP/1.1\r\n' : 'HTTP/1.1 200 OK\r\n';
      const bytes = Buffer.concat([Buffer.from(start, 'latin1'), noise]);
      const whole = decode(kind, ['GET'], [bytes], true, label);
      assert.deepEqual(decode(kind, ['GET'], randomChunks(bytes, random, 16), true, label), whole, label);
    });
  });

  test('what it holds while waiting for a line end is bounded by maxHeaderBytes', () => {
    const endless = (prefix: string, fill: string, bound = MAX_HEADER_BYTES) => {
      const decoder = new Http1Decoder('request', { maxHeaderBytes: MAX_HEADER_BYTES });
      let pushed = 0;
      try {
        decoder.push(Buffer.from(prefix, 'latin1'));
        for (;;) {
          decoder.push(Buffer.from(fill.repeat(64), 'latin1'));
          pushed += fill.length * 64;
          assert.ok(pushed <= bound + fill.length * 64, `${JSON.stringify(prefix)}: still buffering after ${pushed} bytes`);
        }
      } catch (err) {
        assert.ok(err instanceof Http1DecodeError, String(err));
        return err.code;
      }
    };
    assert.equal(endless('', 'A'), 'headers-too-large', 'a start line without an end');
    assert.equal(endless('GET / HTTP/1.1\r\n', 'X-A: b\r\n'), 'headers-too-large', 'header lines without an empty line');
    assert.equal(endless('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', '0'), 'bad-chunk-size', 'a chunk-size line without an end');
    assert.equal(endless('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n', 'T: x\r\n'), 'headers-too-large', 'trailers without an end');
    // Bytes sent before the server answers an upgrade are held up to 64 KiB (or maxHeaderBytes if larger).
    assert.equal(endless('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n', 'z', 64 * 1024), 'switch-pending-too-large', 'bytes held while an upgrade is pending');
  });
});
