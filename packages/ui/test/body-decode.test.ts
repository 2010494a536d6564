// Body decoding runs on the same Web APIs in Node as in the browser (DecompressionStream, TextDecoder).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { bodyBytes, canDecodeInBrowser, classifyBody, contentCodings, decodeInBrowser, hexDump } from '../src/detail/body-decode.js';

const text = '{"hello":"wörld","list":[1,2,3]}'.repeat(50);
const bytes = (s: string) => new TextEncoder().encode(s);
const decodeText = (b: Uint8Array) => new TextDecoder().decode(b);

describe('body decoding', { timeout: 10_000 }, () => {
  test('API bodies become bytes: utf8 text and base64', () => {
    assert.deepEqual(bodyBytes({ size: 3, storedSize: 3, truncated: false, encoding: 'utf8', data: 'hé' }), bytes('hé'));
    assert.deepEqual([...bodyBytes({ size: 3, storedSize: 3, truncated: false, encoding: 'base64', data: 'AP+A' })!], [0, 255, 128]);
    assert.equal(bodyBytes({ size: 3, storedSize: 3, truncated: false, encoding: 'omitted' }), null);
  });

  test('content codings are read in order, identity ignored', () => {
    assert.deepEqual(contentCodings([['Content-Type', 'x'], ['Content-Encoding', 'deflate, GZIP'], ['content-encoding', 'identity']]), ['deflate', 'gzip']);
    assert.deepEqual(contentCodings(null), []);
  });

  test('gzip, zlib deflate, raw deflate and stacked codings decode', async () => {
    assert.equal(decodeText((await decodeInBrowser(gzipSync(text), ['gzip']))!.bytes), text);
    assert.equal(decodeText((await decodeInBrowser(deflateSync(text), ['deflate']))!.bytes), text);
    assert.equal(decodeText((await decodeInBrowser(deflateRawSync(text), ['deflate']))!.bytes), text, 'raw deflate sent as "deflate"');
    const stacked = gzipSync(deflateSync(text));
    assert.equal(decodeText((await decodeInBrowser(stacked, ['deflate', 'gzip']))!.bytes), text, 'last applied is undone first');
  });

  test('a truncated body decodes as far as it goes, with a warning', async () => {
    const big = Buffer.from(Array.from({ length: 4000 }, (_, i) => `line ${i}\n`).join(''));
    const cut = gzipSync(big).subarray(0, 2000);
    const partial = (await decodeInBrowser(cut, ['gzip']))!;
    assert.ok(partial.warning, 'says decoding stopped');
    assert.ok(partial.bytes.length > 0 && big.subarray(0, partial.bytes.length).equals(Buffer.from(partial.bytes)));
  });

  test('codings the browser cannot undo are left to the server', async () => {
    assert.equal(canDecodeInBrowser('gzip'), true);
    assert.equal(canDecodeInBrowser('zstd'), false);
    assert.equal(await decodeInBrowser(bytes('x'), ['zstd']), null);
  });

  test('classification picks a viewer from the type and the bytes', () => {
    assert.equal(classifyBody(bytes(''), 'text/plain'), 'empty');
    assert.equal(classifyBody(bytes('{"a":1}'), 'application/json'), 'json');
    assert.equal(classifyBody(bytes('[1,2]'), null), 'json', 'JSON without a type');
    assert.equal(classifyBody(bytes('{not json'), 'application/json'), 'text');
    assert.equal(classifyBody(bytes('<p>hi</p>'), 'text/html; charset=utf-8'), 'text');
    assert.equal(classifyBody(Uint8Array.from([0x89, 0x50, 0x4e, 0x47]), 'image/png'), 'image');
    assert.equal(classifyBody(Uint8Array.from([0, 1, 2, 0xff]), 'application/octet-stream'), 'binary');
    assert.equal(classifyBody(Uint8Array.from([0, 1, 2, 3]), null), 'binary');
  });

  test('hex dump: offsets, two groups of eight, ASCII column, and a limit', () => {
    const dump = hexDump(bytes('Hello, hex dump!\x00\x01'));
    assert.equal(dump.split('\n')[0], '00000000  48 65 6c 6c 6f 2c 20 68  65 78 20 64 75 6d 70 21  |Hello, hex dump!|');
    assert.equal(dump.split('\n')[1], '00000010  00 01                                             |..|');
    assert.match(hexDump(new Uint8Array(100), 32), /… 68 more bytes$/);
  });
});
