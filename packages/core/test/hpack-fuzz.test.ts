// Fuzzing the HPACK decoder where h2-fuzz.test.ts does not reach: the Huffman decoder on its own,
// blocks that lean on the dynamic table (entries larger than the table, references to what was
// just evicted, size updates against a SETTINGS limit that moves between blocks) checked against a
// model of the table, and bomb-shaped blocks. Only HpackError (or HuffmanError) escapes, the table
// never outgrows its size, and a decoded header list never outgrows its cap.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder, HpackError } from '../src/decode/hpack/decoder.js';
import { HuffmanError, huffmanDecode } from '../src/decode/hpack/huffman.js';
import { STATIC_TABLE_LENGTH } from '../src/decode/hpack/static-table.js';
import { hpackIndexed, hpackLiteral, hpackSizeUpdate, huffmanEncode } from './helpers/h2-encode.js';
import { seededRandom } from './helpers/split.js';

const TIME_BUDGET_MS = 2_500;
type Random = () => number;
const int = (random: Random, n: number) => Math.floor(random() * n);
const text = (random: Random, n: number) => String.fromCharCode(...Array.from({ length: n }, () => int(random, 256)));

function fuzzLoop(iterations: number, body: (random: Random, label: string) => void): number {
  const started = performance.now();
  let done = 0;
  for (; done < iterations && performance.now() - started < TIME_BUDGET_MS; done++) {
    const seed = 0xc0de ^ (done * 2654435761);
    body(seededRandom(seed), `iteration ${done} (seed ${seed >>> 0})`);
  }
  assert.ok(done >= Math.min(iterations, 200), `only ${done} iterations ran within the time budget`);
  return done;
}

/** The dynamic table as RFC 7541 §4 describes it, newest first. */
class TableModel {
  entries: Array<[string, string]> = [];
  constructor(public max: number) {}
  get size(): number {
    return this.entries.reduce((n, [k, v]) => n + k.length + v.length + 32, 0);
  }
  resize(max: number): void {
    this.max = max;
    while (this.size > max) this.entries.pop();
  }
  insert(entry: [string, string]): void {
    while (this.entries.length > 0 && this.size + entry[0].length + entry[1].length + 32 > this.max) this.entries.pop();
    if (entry[0].length + entry[1].length + 32 <= this.max) this.entries.unshift(entry);
  }
}

/** The decoder's table checked against the model, and against its own size rules. */
function checkTable(decoder: HpackDecoder, model: TableModel, label: string): void {
  assert.deepEqual(decoder.tableEntries(), model.entries, `${label}: table`);
  assert.equal(decoder.tableSize, model.size, `${label}: table size`);
  assert.ok(decoder.tableSize <= decoder.tableMaxSize, `${label}: table over its max`);
}

describe('fuzz: HPACK Huffman decoder', { timeout: 10_000 }, () => {
  test('random strings round-trip, random bytes fail only with HuffmanError, output stays within 8/5 of input', () => {
    const codes = new Set<string>();
    fuzzLoop(4000, (random, label) => {
      const value = text(random, int(random, 80));
      assert.equal(huffmanDecode(huffmanEncode(value)), value, label);
      const noise = Buffer.from(Array.from({ length: int(random, 60) }, () => int(random, 256)));
      // EOS is 30 one bits: random bytes almost never hold it.
      const withEos = random() < 0.1 ? Buffer.concat([noise, Buffer.alloc(4, 0xff)]) : noise;
      try {
        const out = huffmanDecode(withEos);
        assert.ok(out.length <= Math.ceil((withEos.length * 8) / 5), `${label}: ${out.length} symbols from ${withEos.length} bytes`);
        codes.add('ok');
      } catch (err) {
        assert.ok(err instanceof HuffmanError, `${label}: ${String(err)}`);
        codes.add(err.code);
      }
    });
    assert.deepEqual([...codes].sort(), ['huffman-eos', 'huffman-padding', 'ok']);
  });
});

describe('fuzz: HPACK dynamic table', { timeout: 10_000 }, () => {
  test('generated blocks against a model: big entries, references to fresh entries, moving limits', () => {
    fuzzLoop(1500, (random, label) => {
      let limit = [0, 64, 256, 4096][int(random, 4)];
      const decoder = new HpackDecoder({ maxTableSize: limit, maxHeaderListSize: 1 << 20 });
      const model = new TableModel(limit);
      for (let b = 0; b < 6; b++) {
        // The peer changes SETTINGS_HEADER_TABLE_SIZE; the encoder must then shrink below it.
        if (random() < 0.3) {
          limit = [0, 100, 4096, 65536][int(random, 4)];
          decoder.setMaxTableSizeLimit(limit);
        }
        const parts: Buffer[] = [];
        const expected: Array<[string, string]> = [];
        if (random() < 0.3 || model.max > limit) {
          const size = int(random, limit + 1);
          parts.push(hpackSizeUpdate(size));
          model.resize(size);
        }
        for (let i = 1 + int(random, 8); i > 0; i--) {
          const op = int(random, 4);
          if (op === 0 && model.entries.length > 0) {
            const k = int(random, model.entries.length);
            parts.push(hpackIndexed(STATIC_TABLE_LENGTH + 1 + k));
            expected.push(model.entries[k]);
          } else if (op === 1) {
            // Sometimes larger than the whole table: it empties it and is not added.
            const big = random() < 0.2;
            const entry: [string, string] = [`x-${int(random, 50)}`, text(random, big ? 5000 : int(random, 40))];
            parts.push(hpackLiteral('incremental', entry[0], entry[1], !big && random() < 0.5));
            expected.push(entry);
            model.insert(entry);
          } else {
            const entry: [string, string] = [`y-${int(random, 9)}`, text(random, int(random, 30))];
            parts.push(hpackLiteral(random() < 0.5 ? 'without' : 'never', entry[0], entry[1], random() < 0.5));
            expected.push(entry);
          }
        }
        const block = decoder.decodeBlock(Buffer.concat(parts));
        assert.deepEqual(block.fields.map((f) => [f.name, f.value]), expected, `${label}, block ${b}`);
        checkTable(decoder, model, `${label}, block ${b}`);
      }
    });
  });

  test('mutated and bomb-shaped blocks: only HpackError, bounded table and header list', (t) => {
    const outcomes = new Set<string>();
    const runs = fuzzLoop(3000, (random, label) => {
      const maxList = [300, 8192, 1 << 20][int(random, 3)];
      let limit = 4096;
      const decoder = new HpackDecoder({ maxHeaderListSize: maxList });
      for (let b = 0; b < 5; b++) {
        if (random() < 0.2) decoder.setMaxTableSizeLimit((limit = [0, 4096, 1 << 20][int(random, 3)]));
        const parts: Buffer[] = [];
        if (random() < 0.3) parts.push(hpackSizeUpdate(int(random, 2 * limit + 2)));
        // A bomb: one entry, then many references to it.
        parts.push(hpackLiteral('incremental', 'x-bomb', 'b'.repeat(int(random, 3000))));
        for (let i = int(random, 300); i > 0; i--) parts.push(hpackIndexed(STATIC_TABLE_LENGTH + 1 + int(random, 3)));
        const block = Buffer.concat(parts);
        for (let m = int(random, 3); m > 0; m--) block[int(random, block.length)] ^= 1 << int(random, 8);
        const bytes = random() < 0.2 ? block.subarray(0, int(random, block.length + 1)) : block;
        try {
          const decoded = decoder.decodeBlock(bytes);
          assert.ok(decoded.headerListSize <= maxList, `${label}: header list over its cap`);
          assert.ok(decoded.fields.length <= bytes.length, `${label}: more fields than bytes`);
          assert.ok(decoder.tableSize <= decoder.tableMaxSize && decoder.tableMaxSize <= Math.max(limit, 4096, 1 << 20), `${label}: table`);
          outcomes.add('ok');
        } catch (err) {
          assert.ok(err instanceof HpackError, `${label}: ${String(err)}`);
          outcomes.add(err.code);
          assert.throws(() => decoder.decodeBlock(Buffer.from([0x82])), (e: unknown) => e instanceof HpackError && e.code === 'unusable');
          break;
        }
      }
    });
    for (const code of ['ok', 'header-list-too-large', 'bad-index', 'truncated', 'size-update-too-large']) {
      assert.ok(outcomes.has(code), `never saw ${code}: ${[...outcomes].join(', ')}`);
    }
    t.diagnostic(`${runs} runs, outcomes: ${[...outcomes].sort().join(', ')}`);
  });
});
