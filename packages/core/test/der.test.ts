// The DER pieces leaf certificates are laid out with, against known encodings and OpenSSL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { oid, time, tlv, SEQUENCE, readElement, children } from '../src/ca/der.js';
import { ipBytes, subjectKeyIdOf } from '../src/ca/leaf-tbs.js';

test('object identifiers, including arcs past 127', () => {
  assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
  assert.equal(oid('1.2.840.113549.1.1.11').toString('hex'), '06092a864886f70d01010b');
  assert.equal(oid('1.3.6.1.5.5.7.3.1').toString('hex'), '06082b06010505070301');
});

test('lengths in short and long form', () => {
  assert.equal(tlv(0x04, Buffer.alloc(3)).subarray(0, 2).toString('hex'), '0403');
  assert.equal(tlv(0x04, Buffer.alloc(200)).subarray(0, 3).toString('hex'), '0481c8');
  assert.equal(tlv(0x04, Buffer.alloc(300)).subarray(0, 4).toString('hex'), '0482012c');
  const nested = tlv(SEQUENCE, tlv(0x04, Buffer.alloc(300)), tlv(0x05, Buffer.alloc(0)));
  const outer = readElement(nested, 0);
  assert.deepEqual(children(nested, outer).map((e) => [e.tag, e.end - e.start]), [[0x04, 300], [0x05, 0]]);
});

test('UTCTime through 2049, GeneralizedTime from 2050, whole seconds', () => {
  assert.equal(time(new Date('2026-11-22T01:02:03.999Z')).toString('latin1'), '\x17\x0d261122010203Z');
  assert.equal(time(new Date('2049-12-31T23:59:59Z')).toString('latin1'), '\x17\x0d491231235959Z');
  assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
});

test('IP addresses as SAN bytes', () => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', '7f000001'],
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8::8:800:200c:417a', '20010db8000000000008080020 0c417a'.replace(' ', '')],
    ['::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['fe80:1:2:3:4:5:6:7', 'fe800001000200030004000500060007'],
  ];
  for (const [address, hex] of cases) assert.equal(ipBytes(address).toString('hex'), hex, address);
});

test('OpenSSL reads the encodings back', () => {
  const der = tlv(SEQUENCE, oid('2.5.29.17'), time(new Date('2050-06-01T12:00:00Z')));
  const out = execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: der, encoding: 'utf8' });
  assert.match(out, /X509v3 Subject Alternative Name/);
  assert.match(out, /GENERALIZEDTIME\s+:20500601120000Z/);
});

test("a CA's key id: its subjectKeyIdentifier, else the SHA-1 of its key bits (what forge and OpenSSL compute)", async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { X509Certificate } = await import('node:crypto');
  const forge = (await import('node-forge')).default;
  const dir = mkdtempSync(join(tmpdir(), 'hopscope-ski-'));
  try {
    for (const ski of ['hash', 'none']) {
      const pem = join(dir, `${ski}.pem`);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', pem, '-subj', '/CN=ski test',
        '-days', '1', '-addext', `subjectKeyIdentifier=${ski}`, '-addext', 'basicConstraints=critical,CA:true'], { stdio: 'ignore' });
      const der = Buffer.from(new X509Certificate(readFileSync(pem)).raw);
      const expected = forge.pki.certificateFromPem(readFileSync(pem, 'utf8')).generateSubjectKeyIdentifier().toHex();
      assert.equal(subjectKeyIdOf(der).toString('hex'), expected, ski);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
