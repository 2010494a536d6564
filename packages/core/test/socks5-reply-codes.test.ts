// Which SOCKS5 reply code (RFC 1928 §6) a client reads for each way the upstream dial can fail.
// (Refused is also covered end to end in test/socks5.test.ts; a DNS failure is not, because a
// lookup of a made-up name would leave the machine outside a network namespace.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { failureFromError, ProxyError } from '../src/net/failure.js';
import { replyForFailure } from '../src/net/socks5-handler.js';
import { Socks5Reply } from '../src/net/socks5-messages.js';

const errno = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

describe('SOCKS5 reply codes for dial failures', { timeout: 10_000 }, () => {
  const cases: Array<[string, Error, number]> = [
    ['connection refused', errno('ECONNREFUSED'), Socks5Reply.connectionRefused],
    ['name not found', errno('ENOTFOUND'), Socks5Reply.hostUnreachable],
    ['resolver unavailable', errno('EAI_AGAIN'), Socks5Reply.hostUnreachable],
    ['no route to the network', errno('ENETUNREACH'), Socks5Reply.networkUnreachable],
    ['no route to the host', errno('EHOSTUNREACH'), Socks5Reply.hostUnreachable],
    ['connect timeout', new ProxyError('timeout', 'connecting to x:1 timed out', 'ETIMEDOUT'), Socks5Reply.hostUnreachable],
    ['reset', errno('ECONNRESET'), Socks5Reply.generalFailure],
    ['anything else', new Error('boom'), Socks5Reply.generalFailure],
  ];
  for (const [name, err, reply] of cases) {
    test(`${name} -> 0x0${reply}`, () => {
      assert.equal(replyForFailure(failureFromError(err, 'internal')), reply);
    });
  }
});
