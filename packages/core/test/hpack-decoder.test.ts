import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder, HpackError, type HpackField } from '../src/decode/hpack/decoder.js';
import { huffmanDecode, HuffmanError } from '../src/decode/hpack/huffman.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from '../src/decode/hpack/huffman-table.js';
import { STATIC_TABLE, STATIC_TABLE_LENGTH } from '../src/decode/hpack/static-table.js';
import {
  fromHex,
  hpackIndexed,
  hpackInt,
  hpackLiteral,
  hpackSizeUpdate,
  hpackString,
  huffmanEncode,
} from './helpers/h2-encode.js';

const opts = { timeout: 10_000 };

type Want = [name: string, value: string, representation: HpackField['representation'], index?: number];

interface Step {
  hex: string;
  fields: Want[];
  /** Dynamic table after the block, newest first, and its size. */
  table: Array<[string, string]>;
  size: number;
}

function checkSequence(maxTableSize: number, huffman: boolean, steps: Step[]) {
  const decoder = new HpackDecoder({ maxTableSize });
  for (const step of steps) {
    const fields = decoder.decode(fromHex(step.hex));
    assert.deepEqual(
      fields.map((f) => [f.name, f.value, f.representation, f.index]),
      step.fields.map(([n, v, r, i]) => [n, v, r, i]),
    );
    for (const f of fields) {
      if (f.representation !== 'indexed') assert.equal(f.huffman, huffman, `huffman flag of ${f.name}`);
    }
    assert.deepEqual(decoder.tableEntries(), step.table);
    assert.equal(decoder.tableSize, step.size);
  }
}

function assertHpackError(fn: () => unknown, code: string) {
  assert.throws(fn, (err: unknown) => err instanceof HpackError && err.code === code, `expected HpackError ${code}`);
}

// RFC 7541 Appendix C.3 / C.4: three requests on one connection, table 4096.
const REQUESTS: Array<Omit<Step, 'hex'>> = [
  {
    fields: [
      [':method', 'GET', 'indexed', 2],
      [':scheme', 'http', 'indexed', 6],
      [':path', '/', 'indexed', 4],
      [':authority', 'www.example.com', 'literal-incremental', 1],
    ],
    table: [[':authority', 'www.example.com']],
    size: 57,
  },
  {
    fields: [
      [':method', 'GET', 'indexed', 2],
      [':scheme', 'http', 'indexed', 6],
      [':path', '/', 'indexed', 4],
      [':authority', 'www.example.com', 'indexed', 62],
      ['cache-control', 'no-cache', 'literal-incremental', 24],
    ],
    table: [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 110,
  },
  {
    fields: [
      [':method', 'GET', 'indexed', 2],
      [':scheme', 'https', 'indexed', 7],
      [':path', '/index.html', 'indexed', 5],
      [':authority', 'www.example.com', 'indexed', 63],
      ['custom-key', 'custom-value', 'literal-incremental'],
    ],
    table: [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 164,
  },
];

// RFC 7541 Appendix C.5 / C.6: three responses, table 256, with eviction.
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSES: Array<Omit<Step, 'hex'>> = [
  {
    fields: [
      [':status', '302', 'literal-incremental', 8],
      ['cache-control', 'private', 'literal-incremental', 24],
      ['date', DATE1, 'literal-incremental', 33],
      ['location', LOCATION, 'literal-incremental', 46],
    ],
    table: [
      ['location', LOCATION],
      ['date', DATE1],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
    size: 222,
  },
  {
    fields: [
      [':status', '307', 'literal-incremental', 8],
      ['cache-control', 'private', 'indexed', 65],
      ['date', DATE1, 'indexed', 64],
      ['location', LOCATION, 'indexed', 63],
    ],
    table: [
      [':status', '307'],
      ['location', LOCATION],
      ['date', DATE1],
      ['cache-control', 'private'],
    ],
    size: 222,
  },
  {
    fields: [
      [':status', '200', 'indexed', 8],
      ['cache-control', 'private', 'indexed', 65],
      ['date', DATE2, 'literal-incremental', 33],
      ['location', LOCATION, 'indexed', 64],
      ['content-encoding', 'gzip', 'literal-incremental', 26],
      ['set-cookie', COOKIE, 'literal-incremental', 55],
    ],
    table: [
      ['set-cookie', COOKIE],
      ['content-encoding', 'gzip'],
      ['date', DATE2],
    ],
    size: 215,
  },
];

const withHex = (steps: Array<Omit<Step, 'hex'>>, hex: string[]): Step[] => steps.map((s, i) => ({ ...s, hex: hex[i] }));

describe('HPACK decoder: RFC 7541 Appendix C', opts, () => {
  test('C.1 integers: 10 and 1337 with a 5-bit prefix, 42 at an octet boundary', opts, () => {
    const decoder = new HpackDecoder({ maxTableSize: 4096 });
    // Size updates carry a 5-bit prefix integer, so they show the decoded value directly.
    assert.deepEqual(decoder.decodeBlock(fromHex('2a')).tableSizeUpdates, [10]);
    assert.deepEqual(decoder.decodeBlock(fromHex('3f 9a 0a')).tableSizeUpdates, [1337]);
    assert.deepEqual(hpackInt(1337, 5), [0x1f, 0x9a, 0x0a]);
    // 42 with an 8-bit prefix is the string length octet of a raw literal.
    const block = Buffer.concat([fromHex('00 01 61 2a'), Buffer.alloc(42, 'x')]);
    assert.equal(decoder.decode(block)[0].value.length, 42);
  });

  test('C.2.1 literal with indexing', opts, () => {
    checkSequence(4096, false, [
      {
        hex: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
        fields: [['custom-key', 'custom-header', 'literal-incremental']],
        table: [['custom-key', 'custom-header']],
        size: 55,
      },
    ]);
  });

  test('C.2.2 literal without indexing, C.2.3 never indexed, C.2.4 indexed', opts, () => {
    checkSequence(4096, false, [
      { hex: '040c 2f73 616d 706c 652f 7061 7468', fields: [[':path', '/sample/path', 'literal-without-indexing', 4]], table: [], size: 0 },
    ]);
    checkSequence(4096, false, [
      { hex: '1008 7061 7373 776f 7264 0673 6563 7265 74', fields: [['password', 'secret', 'literal-never-indexed']], table: [], size: 0 },
    ]);
    checkSequence(4096, false, [{ hex: '82', fields: [[':method', 'GET', 'indexed', 2]], table: [], size: 0 }]);
  });

  test('C.3 requests without Huffman', opts, () => {
    checkSequence(
      4096,
      false,
      withHex(REQUESTS, [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ]),
    );
  });

  test('C.4 requests with Huffman', opts, () => {
    checkSequence(
      4096,
      true,
      withHex(REQUESTS, [
        '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
        '8286 84be 5886 a8eb 1064 9cbf',
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      ]),
    );
  });

  test('C.5 responses without Huffman, table 256 with eviction', opts, () => {
    checkSequence(
      256,
      false,
      withHex(RESPONSES, [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d' +
          ' 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f' +
          ' 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630' +
          ' 303b 2076 6572 7369 6f6e 3d31',
      ]),
    );
  });

  test('C.6 responses with Huffman, table 256 with eviction', opts, () => {
    checkSequence(
      256,
      true,
      withHex(RESPONSES, [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7' +
          ' 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335' +
          ' dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ]),
    );
  });
});

describe('HPACK Huffman', opts, () => {
  test('the generated table is a complete, prefix-free, canonical code', opts, () => {
    assert.equal(HUFFMAN_CODES.length, 257);
    // Kraft sum of exactly 1 (in units of 2^-30) means complete; canonical order implies prefix-free.
    let kraft = 0;
    for (const len of HUFFMAN_LENGTHS) kraft += 2 ** (30 - len);
    assert.equal(kraft, 2 ** 30);
    const order = [...HUFFMAN_CODES.keys()].sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
    let code = 0;
    order.forEach((sym, i) => {
      if (i > 0) code = (code + 1) * 2 ** (HUFFMAN_LENGTHS[sym] - HUFFMAN_LENGTHS[order[i - 1]]);
      assert.equal(HUFFMAN_CODES[sym], code, `code of symbol ${sym}`);
    });
    // Spot checks against the RFC text: '0', 'a', ' ', 0x00, EOS.
    assert.deepEqual([HUFFMAN_CODES[48], HUFFMAN_LENGTHS[48]], [0x0, 5]);
    assert.deepEqual([HUFFMAN_CODES[97], HUFFMAN_LENGTHS[97]], [0x3, 5]);
    assert.deepEqual([HUFFMAN_CODES[32], HUFFMAN_LENGTHS[32]], [0x14, 6]);
    assert.deepEqual([HUFFMAN_CODES[0], HUFFMAN_LENGTHS[0]], [0x1ff8, 13]);
    assert.deepEqual([HUFFMAN_CODES[256], HUFFMAN_LENGTHS[256]], [0x3fffffff, 30]);
  });

  test('round-trips every byte value and random strings', opts, () => {
    const all = Buffer.from([...Array(256).keys()]);
    assert.equal(huffmanDecode(huffmanEncode(all)), all.toString('latin1'));
    assert.equal(huffmanDecode(Buffer.alloc(0)), '');
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 500; i++) {
      const s = Buffer.from(Array.from({ length: rand() % 40 }, () => rand() % 256));
      assert.equal(huffmanDecode(huffmanEncode(s)), s.toString('latin1'));
    }
  });

  test('rejects EOS, padding over 7 bits and padding that is not all ones', opts, () => {
    const code = (fn: () => unknown, c: string) =>
      assert.throws(fn, (e: unknown) => e instanceof HuffmanError && e.code === c);
    code(() => huffmanDecode(fromHex('ffff ffff')), 'huffman-eos'); // EOS followed by 2 one bits
    code(() => huffmanDecode(fromHex('ff')), 'huffman-padding'); // 8 bits of padding
    code(() => huffmanDecode(fromHex('1f ff')), 'huffman-padding'); // 'a' (00011) then 11 ones
    code(() => huffmanDecode(fromHex('18')), 'huffman-padding'); // 'a' then padding 000
    assert.equal(huffmanDecode(fromHex('1f')), 'a'); // 'a' then 111
  });
});

describe('HPACK decoder: tables, limits and errors', opts, () => {
  test('static table has 61 entries with the RFC names at the edges', opts, () => {
    assert.equal(STATIC_TABLE_LENGTH, 61);
    assert.deepEqual(STATIC_TABLE[1], [':authority', '']);
    assert.deepEqual(STATIC_TABLE[16], ['accept-encoding', 'gzip, deflate']);
    assert.deepEqual(STATIC_TABLE[61], ['www-authenticate', '']);
  });

  test('size updates: shown, evict, 0 empties the table, only at the start, never over the limit', opts, () => {
    const decoder = new HpackDecoder();
    decoder.decode(hpackLiteral('incremental', 'custom-key', 'custom-header'));
    assert.equal(decoder.tableSize, 55);
    const block = decoder.decodeBlock(Buffer.concat([hpackSizeUpdate(0), hpackSizeUpdate(100), hpackIndexed(2)]));
    assert.deepEqual(block.tableSizeUpdates, [0, 100]);
    assert.deepEqual(block.fields.map((f) => f.name), [':method']);
    assert.equal(decoder.tableSize, 0);
    assert.equal(decoder.tableMaxSize, 100);
    // An entry bigger than the table empties it and is not added.
    decoder.decode(hpackLiteral('incremental', 'a', 'b'));
    assert.equal(decoder.tableSize, 34);
    decoder.decode(hpackLiteral('incremental', 'n', 'x'.repeat(80)));
    assert.deepEqual(decoder.tableEntries(), []);
    assertHpackError(() => new HpackDecoder().decode(fromHex('82 20')), 'size-update-position');
    assertHpackError(() => new HpackDecoder().decode(hpackSizeUpdate(4097)), 'size-update-too-large');
    const limited = new HpackDecoder({ maxTableSize: 8192 });
    assert.deepEqual(limited.decodeBlock(hpackSizeUpdate(8192)).tableSizeUpdates, [8192]);
    limited.setMaxTableSizeLimit(1024);
    assertHpackError(() => limited.decode(hpackSizeUpdate(2048)), 'size-update-too-large');
  });

  test('bad indices, truncation and integer overflow', opts, () => {
    assertHpackError(() => new HpackDecoder().decode(fromHex('80')), 'bad-index');
    assertHpackError(() => new HpackDecoder().decode(fromHex('be')), 'bad-index');
    assertHpackError(() => new HpackDecoder().decode(fromHex('7f00 0161')), 'bad-index'); // name index 63
    assertHpackError(() => new HpackDecoder().decode(fromHex('0005 6162')), 'truncated');
    assertHpackError(() => new HpackDecoder().decode(fromHex('00')), 'truncated');
    assertHpackError(() => new HpackDecoder().decode(fromHex('ff')), 'truncated');
    assertHpackError(() => new HpackDecoder().decode(fromHex('ff ff ff ff ff 0f')), 'integer-overflow');
    assertHpackError(() => new HpackDecoder().decode(fromHex('ff 80 80 80 80 80 00')), 'integer-overflow');
    assertHpackError(() => new HpackDecoder().decode(fromHex('00 81 ff 01 61')), 'huffman-padding');
    // 2^32-1 itself is a valid integer (an index far past the table).
    assertHpackError(() => new HpackDecoder().decode(Buffer.from(hpackInt(2 ** 32 - 1, 7, 0x80))), 'bad-index');
  });

  test('HPACK bomb: many references to one big entry stop at maxHeaderListSize', opts, () => {
    const decoder = new HpackDecoder({ maxHeaderListSize: 64 * 1024 });
    const big = hpackLiteral('incremental', 'x-big', 'v'.repeat(4000));
    const bomb = Buffer.concat([big, Buffer.alloc(1000, hpackIndexed(62))]);
    assertHpackError(() => decoder.decode(bomb), 'header-list-too-large');
    // A list right at the cap is fine.
    const exact = new HpackDecoder({ maxHeaderListSize: 42 + 42 });
    assert.equal(exact.decodeBlock(fromHex('82 82')).headerListSize, 84);
    assertHpackError(() => exact.decode(fromHex('82 82 82')), 'header-list-too-large');
  });

  test('after an error the decoder is unusable', opts, () => {
    const decoder = new HpackDecoder();
    assertHpackError(() => decoder.decode(fromHex('80')), 'bad-index');
    assertHpackError(() => decoder.decode(fromHex('82')), 'unusable');
  });

  test('literal names, Huffman flags and byte strings (latin1, no byte lost)', opts, () => {
    const decoder = new HpackDecoder();
    const fields = decoder.decode(
      Buffer.concat([
        hpackLiteral('never', 'x-secret', 'tok\xe9n', true),
        hpackLiteral('without', 31, 'text/plain'),
        Buffer.from([0x00, ...hpackString('X-Case'), ...hpackString('\x01\xff')]),
      ]),
    );
    assert.deepEqual(fields, [
      { name: 'x-secret', value: 'tok\xe9n', representation: 'literal-never-indexed', huffman: true, nameHuffman: true },
      { name: 'content-type', value: 'text/plain', representation: 'literal-without-indexing', huffman: false, index: 31 },
      { name: 'X-Case', value: '\x01\xff', representation: 'literal-without-indexing', huffman: false, nameHuffman: false },
    ]);
  });
});
