import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFilter, parseFilter, parseFilterOrThrow, type FilterExpr } from '../src/filter/index.js';

const parse = (source: string) => parseFilterOrThrow(source);

function error(source: string) {
  const result = parseFilter(source);
  assert.equal(result.ok, false, `expected "${source}" to be rejected`);
  return (result as { ok: false; error: { message: string; start: number; end: number } }).error;
}

describe('filter parser', { timeout: 10_000 }, () => {
  test('an empty or blank expression matches everything', () => {
    assert.equal(parse(''), null);
    assert.equal(parse('   \t'), null);
  });

  test('bare words search the URL, lower-cased', () => {
    assert.deepEqual(parse('Api/Users'), { type: 'url', text: 'api/users' });
    assert.deepEqual(parse('"two words"'), { type: 'url', text: 'two words' });
    assert.deepEqual(parse('https://a.test/x'), { type: 'url', text: 'https://a.test/x' });
  });

  test('fields parse to typed leaves', () => {
    assert.deepEqual(parse('host:*.Example.com'), { type: 'host', pattern: '*.example.com' });
    assert.deepEqual(parse('method:post'), { type: 'method', method: 'POST' });
    assert.deepEqual(parse('status:404'), { type: 'status', test: { op: 'eq', value: 404 } });
    assert.deepEqual(parse('status:4xx'), { type: 'status', test: { op: 'range', min: 400, max: 499 } });
    assert.deepEqual(parse('status:>=500'), { type: 'status', test: { op: 'ge', value: 500 } });
    assert.deepEqual(parse('status:200-299'), { type: 'status', test: { op: 'range', min: 200, max: 299 } });
    assert.deepEqual(parse('protocol:h2'), { type: 'protocol', protocols: ['h2'], websocket: false });
    assert.deepEqual(parse('protocol:ws-h2'), { type: 'protocol', protocols: ['h2', 'h2c'], websocket: true });
    assert.deepEqual(parse('has:websocket'), { type: 'has', what: 'websocket' });
    assert.deepEqual(parse('header:Content-Type=JSON'), { type: 'header', side: 'any', name: 'content-type', value: 'json' });
    assert.deepEqual(parse('resheader:x-cache'), { type: 'header', side: 'response', name: 'x-cache', value: null });
    assert.deepEqual(parse('reqbody:"user id"'), { type: 'body', side: 'request', text: 'user id' });
    assert.deepEqual(parse('size:>1.5kb'), { type: 'size', side: 'response', test: { op: 'gt', value: 1536 } });
    assert.deepEqual(parse('duration:<2s'), { type: 'duration', test: { op: 'lt', value: 2000 } });
    assert.deepEqual(parse('error:*'), { type: 'has', what: 'error' });
    assert.deepEqual(parse('domain:a.test'), { type: 'host', pattern: 'a.test' }, 'aliases');
  });

  test('not binds tighter than and, and tighter than or; juxtaposition means and', () => {
    const expected: FilterExpr = {
      type: 'or',
      left: { type: 'and', left: { type: 'not', expr: { type: 'method', method: 'GET' } }, right: { type: 'status', test: { op: 'eq', value: 200 } } },
      right: { type: 'host', pattern: 'a' },
    };
    assert.deepEqual(parse('not method:GET status:200 or host:a'), expected);
    assert.deepEqual(parse('!method:GET && status:200 || host:a'), expected);
    assert.deepEqual(parse('-method:GET AND status:200 OR host:a'), expected);
    assert.deepEqual(parse('not (host:a or host:b)'), {
      type: 'not',
      expr: { type: 'or', left: { type: 'host', pattern: 'a' }, right: { type: 'host', pattern: 'b' } },
    });
  });

  test('formatFilter round-trips through the parser', () => {
    for (const source of [
      'host:a.test and (status:4xx or status:>=500) and not method:OPTIONS',
      'header:"x-a=b c" body:"say \\"hi\\"" -"and"',
      'protocol:ws or protocol:http1 or protocol:ws-h2 or protocol:http2',
      'size:10-20 reqsize:<=5 duration:>100 conn:3 type:json has:error state:failed error:timeout scheme:https',
    ]) {
      const expr = parse(source);
      assert.deepEqual(parse(formatFilter(expr)), expr, source);
    }
  });

  test('errors say what was expected and point at the text', () => {
    const unknown = error('hots:a.test');
    assert.match(unknown.message, /Unknown field "hots"\. Did you mean "host"\?/);
    assert.deepEqual([unknown.start, unknown.end], [0, 4]);

    const badStatus = error('host:a status:abc');
    assert.match(badStatus.message, /"abc" is not a status\. Use a number like 200/);
    assert.deepEqual([badStatus.start, badStatus.end], [14, 17]);

    assert.match(error('status:').message, /Expected a value after "status:"/);
    assert.match(error('host:a and').message, /Expected a condition after "and"/);
    assert.match(error('or host:a').message, /"or" needs a condition on its left/);
    const open = error('(host:a or host:b');
    assert.match(open.message, /never closed/);
    assert.deepEqual([open.start, open.end], [0, 1]);
    const close = error('host:a)');
    assert.match(close.message, /no matching "\("/);
    assert.equal(close.start, 6);
    assert.match(error('()').message, /Empty parentheses/);
    assert.match(error('body:"abc').message, /quote is never closed/);
    assert.match(error('protocol:h3').message, /protocol must be one of: .*h2/);
    assert.match(error('has:cookies').message, /has must be one of: websocket, error/);
    assert.match(error('status:500-400').message, /range "500-400" is empty/);
    assert.match(error('size:3parsecs').message, /"3parsecs" is not a size\..*Units: b, k, kb, m, mb, g, gb\./);
  });

  test('never throws anything but its own error on arbitrary input', () => {
    const alphabet = ['a', ':', '"', '(', ')', ' ', '!', '-', '&', '|', '\\', '*', '=', '<', '>', 'status', 'host', 'and', 'or', 'not', '4xx', '1'];
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 5000; i++) {
      let source = '';
      for (let n = rand(12); n > 0; n--) source += alphabet[rand(alphabet.length)];
      const result = parseFilter(source);
      if (!result.ok) {
        assert.ok(result.error.start >= 0 && result.error.end <= source.length && result.error.start <= result.error.end, source);
        assert.ok(result.error.message.length > 10);
      }
    }
  });
});
