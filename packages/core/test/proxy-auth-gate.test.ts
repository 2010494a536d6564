// The pure parts of the proxy-authentication gate: which requests pass, how a refusal is
// described, what the capture keeps of the credentials, when a 407 may keep the connection, and
// which listen addresses count as loopback.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertListenAllowed,
  authorizeProxyRequest,
  clientKeepsAlive,
  isLoopbackHost,
  proxyAuthResponseHeaders,
  PROXY_AUTH_BODY,
  redactProxyAuthorization,
} from '../src/net/proxy-auth-gate.js';
import type { HeaderList } from '../src/capture/events.js';

const expected = { user: 'alice', pass: 'pa:ss' };
const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;

describe('proxy auth gate', { timeout: 10_000 }, () => {
  test('authorizeProxyRequest: passes the right credentials (any header case), refuses the rest with stable codes', () => {
    assert.deepEqual(authorizeProxyRequest(null, []), { ok: true, user: null }, 'authentication off');
    assert.deepEqual(authorizeProxyRequest(expected, [['proxy-AUTHORIZATION', basic('alice:pa:ss')]]), { ok: true, user: 'alice' });
    const cases: Array<[HeaderList, string, RegExp]> = [
      [[], 'proxy-auth-missing', /no Proxy-Authorization/],
      [[['Proxy-Authorization', basic('alice:wrong')]], 'proxy-auth-rejected', /wrong user name or password for "alice"/],
      [[['Proxy-Authorization', basic('bob:pa:ss')]], 'proxy-auth-rejected', /"bob"/],
      [[['Proxy-Authorization', 'Bearer abc']], 'proxy-auth-rejected', /malformed or not Basic/],
      [[['Proxy-Authorization', 'Basic !!!']], 'proxy-auth-rejected', /malformed or not Basic/],
      [[['Authorization', basic('alice:pa:ss')]], 'proxy-auth-missing', /no Proxy-Authorization/],
    ];
    for (const [headers, code, message] of cases) {
      const outcome = authorizeProxyRequest(expected, headers);
      assert.equal(outcome.ok, false, JSON.stringify(headers));
      if (outcome.ok) continue;
      assert.deepEqual([outcome.failure.reason, outcome.failure.code], ['bad-request', code]);
      assert.match(outcome.failure.message, message);
    }
  });

  test('redactProxyAuthorization keeps the header and its scheme, drops the secret, leaves others alone', () => {
    const headers: HeaderList = [
      ['Host', 'a.test'],
      ['Proxy-Authorization', basic('alice:pa:ss')],
      ['Authorization', 'Basic c2VjcmV0'],
    ];
    assert.deepEqual(redactProxyAuthorization(headers), [
      ['Host', 'a.test'],
      ['Proxy-Authorization', 'Basic [redacted]'],
      ['Authorization', 'Basic c2VjcmV0'],
    ]);
    assert.equal(headers[1][1], basic('alice:pa:ss'), 'the input is not changed');
    const none: HeaderList = [['Host', 'a.test']];
    assert.equal(redactProxyAuthorization(none), none, 'nothing to redact: the same list');
  });

  test('clientKeepsAlive follows HTTP/1.1 defaults, Connection and Proxy-Connection', () => {
    assert.equal(clientKeepsAlive('1.1', []), true);
    assert.equal(clientKeepsAlive('1.1', [['Connection', 'close']]), false);
    assert.equal(clientKeepsAlive('1.1', [['Proxy-Connection', 'close']]), false);
    assert.equal(clientKeepsAlive('1.0', []), false);
    assert.equal(clientKeepsAlive('1.0', [['Connection', 'Keep-Alive']]), true);
    assert.equal(clientKeepsAlive('1.0', [['Proxy-Connection', 'Keep-Alive']]), true);
  });

  test('the 407 headers carry the challenge and the exact body length', () => {
    const headers = new Map(proxyAuthResponseHeaders(false));
    assert.equal(headers.get('Proxy-Authenticate'), 'Basic realm="hopscope", charset="UTF-8"');
    assert.equal(Number(headers.get('Content-Length')), Buffer.byteLength(PROXY_AUTH_BODY));
    assert.equal(headers.get('Connection'), 'close');
    assert.equal(new Map(proxyAuthResponseHeaders(true)).get('Connection'), 'keep-alive');
  });

  test('isLoopbackHost: 127.0.0.0/8, ::1 in any spelling, localhost; nothing else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of ['0.0.0.0', '::', '', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'example.com', 'localhost.evil.example', '127.0.0.1.nip.io']) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });

  test('assertListenAllowed: non-loopback needs credentials or an explicit yes', () => {
    assert.doesNotThrow(() => assertListenAllowed('127.0.0.1', {}));
    assert.doesNotThrow(() => assertListenAllowed('0.0.0.0', { proxyAuth: expected }));
    assert.doesNotThrow(() => assertListenAllowed('0.0.0.0', { allowOpenProxy: true }));
    assert.throws(() => assertListenAllowed('0.0.0.0', {}), /refusing to run the proxy on 0\.0\.0\.0 without --proxy-auth/);
    assert.throws(() => assertListenAllowed('', { proxyAuth: null }), /on all addresses/);
    assert.throws(() => assertListenAllowed('::', {}, 'the SOCKS port'), /refusing to run the SOCKS port on ::/);
  });
});
