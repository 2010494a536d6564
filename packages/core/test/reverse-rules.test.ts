import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRules, matchReverseRule, parseReverseRule, requestPath } from '../src/reverse/reverse-rules.js';

describe('--reverse rules', { timeout: 10_000 }, () => {
  test('parses a bare URL, a path prefix, a host prefix and both', () => {
    assert.deepEqual(parseReverseRule('http://127.0.0.1:3000'), {
      host: null,
      pathPrefix: '/',
      upstream: { scheme: 'http', host: '127.0.0.1', port: 3000, authority: '127.0.0.1:3000' },
      text: 'http://127.0.0.1:3000',
    });
    const ws = parseReverseRule('/ws=h2c://[::1]:9000/');
    assert.equal(ws.pathPrefix, '/ws');
    assert.deepEqual(ws.upstream, { scheme: 'h2c', host: '::1', port: 9000, authority: '[::1]:9000' });
    const api = parseReverseRule('API.test/=https://127.0.0.1:8443');
    assert.equal(api.host, 'api.test');
    assert.equal(api.pathPrefix, '/');
    const both = parseReverseRule('api.test:8080/v1=https://backend.test');
    assert.equal(both.host, 'api.test:8080');
    assert.equal(both.pathPrefix, '/v1');
    assert.deepEqual(both.upstream, { scheme: 'https', host: 'backend.test', port: 443, authority: 'backend.test' });
    assert.equal(parseReverseRule('api.test=http://b.test:80').upstream.authority, 'b.test', 'a default port is left out of Host');
  });

  test('refuses what it cannot honour, saying why', () => {
    assert.throws(() => parseReverseRule('/x=ftp://host'), /scheme must be http, https or h2c/);
    assert.throws(() => parseReverseRule('/x=http://host/base'), /may not have a path.*proxy_pass without a URI part/);
    assert.throws(() => parseReverseRule('/x=http://host/?q=1'), /may not have a path or query/);
    assert.throws(() => parseReverseRule('/x=http://u:p@host'), /credentials/);
    assert.throws(() => parseReverseRule('/x=not a url'), /is not a URL/);
    assert.throws(() => parseReverseRule('/x'), /wants \[HOST\]\[\/PATH\]=URL/);
    assert.throws(() => parseReverseRule('bad host/=http://h'), /is not a host name/);
  });

  test('the longest matching prefix wins; a rule naming the host beats any that does not', () => {
    const rules = ['http://catch.all', '/ws=http://ws.backend', '/ws/admin=http://admin.backend', 'api.test/=http://api.backend', 'api.test/ws=http://api-ws.backend'].map(
      parseReverseRule,
    );
    const to = (authority: string | null, target: string) => matchReverseRule(rules, authority, requestPath(target))?.upstream.host ?? null;
    assert.equal(to('localhost:8082', '/'), 'catch.all');
    assert.equal(to('localhost:8082', '/ws'), 'ws.backend');
    assert.equal(to('localhost:8082', '/wsx?q'), 'ws.backend', 'a plain prefix, like nginx location');
    assert.equal(to('localhost:8082', '/ws/admin/x'), 'admin.backend');
    assert.equal(to('API.test:8082', '/ws/admin'), 'api-ws.backend');
    assert.equal(to('api.test.', '/other'), 'api.backend');
    assert.equal(to(null, '/ws'), 'ws.backend');
    assert.equal(to('localhost', 'http://api.test/ws'), 'ws.backend', 'absolute-form: its path; Host decides the host');
    assert.equal(matchReverseRule([parseReverseRule('/only=http://x')], 'h', '/other'), null);
    assert.equal(to('[::1]:8082', '*'), 'catch.all');
  });

  test('a rule with a port in its host matches that authority only', () => {
    const rules = [parseReverseRule('a.test:8443/=http://tls.backend'), parseReverseRule('/=http://plain.backend')];
    assert.equal(matchReverseRule(rules, 'a.test:8443', '/')?.upstream.host, 'tls.backend');
    assert.equal(matchReverseRule(rules, 'a.test:8080', '/')?.upstream.host, 'plain.backend');
  });

  test('describes the rules for the answer to an unmatched request', () => {
    const text = describeRules(['/ws=h2c://127.0.0.1:9000', 'api.test/=https://[::1]'].map(parseReverseRule));
    assert.equal(text, '  (any host)/ws -> h2c://127.0.0.1:9000\n  api.test/ -> https://[::1]:443');
  });
});
