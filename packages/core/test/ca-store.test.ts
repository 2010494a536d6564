import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaStoreError, loadOrCreateCa } from '../src/ca/ca-store.js';
import { trustInstructions } from '../src/ca/trust-instructions.js';

const DAY = 24 * 60 * 60 * 1000;
/** Per test; suites get 30 s since RSA key generation time varies a lot on a loaded machine. */
const bounded = { timeout: 10_000 };
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hopscope-ca-store-'));
  dirs.push(dir);
  return dir;
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('loadOrCreateCa', { timeout: 30_000 }, () => {
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  test('creates ca.pem, ca.cer and a 0600 ca-key.pem in a new nested folder', bounded, async () => {
    const dir = join(await tempDir(), 'nested', 'ca');
    const ca = await loadOrCreateCa(dir);
    assert.equal(ca.created, true);
    assert.equal(ca.certPath, join(dir, 'ca.pem'));
    assert.equal(await readFile(ca.certPath, 'utf8'), ca.certPem);
    assert.equal(await readFile(ca.keyPath, 'utf8'), ca.keyPem);
    assert.match(ca.certPem, /^-----BEGIN CERTIFICATE-----\n/);
    assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.deepEqual(await readFile(ca.certDerPath), new X509Certificate(ca.certPem).raw);
    assert.equal(await modeOf(ca.keyPath), 0o600);
    assert.equal(await modeOf(dir), 0o700);
  });

  test('the key is 0600 even under umask 0 (created with that mode, not narrowed later)', bounded, async () => {
    const old = process.umask(0);
    try {
      const ca = await loadOrCreateCa(await tempDir());
      assert.equal(await modeOf(ca.keyPath), 0o600);
      assert.equal(await modeOf(ca.certPath), 0o644);
    } finally {
      process.umask(old);
    }
  });

  test('the certificate is a 10-year RSA 2048 root with the right extensions', bounded, async () => {
    const ca = await loadOrCreateCa(await tempDir());
    const x = new X509Certificate(ca.certPem);
    assert.equal(x.ca, true);
    assert.equal(x.subject, x.issuer);
    assert.match(x.subject, /^O=hopscope\nCN=hopscope CA [0-9a-f]{6}$/);
    assert.equal(ca.commonName, x.subject.split('CN=')[1]);
    assert.ok(x.checkPrivateKey(ca.key));
    assert.ok(x.verify(createPublicKey(ca.certPem)), 'self-signed signature verifies');
    assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const from = Date.parse(x.validFrom);
    const to = Date.parse(x.validTo);
    assert.ok(Math.abs(Date.now() - DAY - from) < 60_000, `notBefore a day back: ${x.validFrom}`);
    assert.ok(to - from > 9.9 * 365 * DAY && to - from < 10.1 * 365 * DAY, `about 10 years: ${x.validTo}`);
    assert.ok(parseInt(x.serialNumber[0], 16) < 8 && x.serialNumber.length >= 30, `positive random serial ${x.serialNumber}`);

    const text = execFileSync('openssl', ['x509', '-in', ca.certPath, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
    assert.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    assert.match(text, /X509v3 Subject Key Identifier:\s+([0-9A-F]{2}:){19}[0-9A-F]{2}\n/);
    const der = execFileSync('openssl', ['x509', '-inform', 'DER', '-in', ca.certDerPath, '-noout', '-subject'], { encoding: 'utf8' });
    assert.match(der, new RegExp(ca.commonName));
    assert.match(execFileSync('openssl', ['verify', '-CAfile', ca.certPath, ca.certPath], { encoding: 'utf8' }), /: OK/);
  });

  test('a second load reuses the CA; a missing ca.cer is recreated', bounded, async () => {
    const dir = await tempDir();
    const first = await loadOrCreateCa(dir);
    await unlink(first.certDerPath);
    const second = await loadOrCreateCa(dir);
    assert.equal(second.created, false);
    assert.equal(second.certPem, first.certPem);
    assert.equal(second.keyPem, first.keyPem);
    assert.equal(second.commonName, first.commonName);
    assert.deepEqual(await readFile(second.certDerPath), first.cert.raw);
  });

  test('two folders get distinct names and keys', bounded, async () => {
    const [a, b] = await Promise.all([loadOrCreateCa(await tempDir()), loadOrCreateCa(await tempDir())]);
    assert.notEqual(a.commonName, b.commonName);
    assert.notEqual(a.cert.serialNumber, b.cert.serialNumber);
    assert.notEqual(a.keyPem, b.keyPem);
  });

  test('two loads racing on an empty folder end with one CA', bounded, async () => {
    const dir = await tempDir();
    const results = await Promise.all([loadOrCreateCa(dir), loadOrCreateCa(dir), loadOrCreateCa(dir)]);
    assert.equal(results.filter((r) => r.created).length, 1);
    for (const r of results) assert.equal(r.certPem, results[0].certPem);
    assert.equal(await readFile(join(dir, 'ca.pem'), 'utf8'), results[0].certPem);
    assert.ok(new X509Certificate(results[0].certPem).checkPrivateKey(results[2].key));
  });

  test('a group/world-readable key is reported and fixed to 0600', bounded, async () => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);
    await chmod(ca.keyPath, 0o644);
    const warnings: string[] = [];
    const again = await loadOrCreateCa(dir, { warn: (m) => warnings.push(m) });
    assert.equal(again.created, false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /accessible to group or others \(mode 0644\)/);
    assert.equal(await modeOf(ca.keyPath), 0o600);
    const quiet: string[] = [];
    await loadOrCreateCa(dir, { warn: (m) => quiet.push(m) });
    assert.deepEqual(quiet, []);
  });

  test('refuses a certificate without its key, a key of another CA, and a key without a certificate', bounded, async () => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);
    const other = await loadOrCreateCa(await tempDir());

    await writeFile(ca.keyPath, other.keyPem, { mode: 0o600 });
    await assert.rejects(loadOrCreateCa(dir), (e: Error) => e instanceof CaStoreError && /does not belong/.test(e.message));

    await unlink(ca.keyPath);
    await assert.rejects(loadOrCreateCa(dir), (e: Error) => e instanceof CaStoreError && /private key .* is missing/.test(e.message));

    await writeFile(ca.keyPath, ca.keyPem, { mode: 0o600 });
    await unlink(ca.certPath);
    await assert.rejects(
      loadOrCreateCa(dir, { concurrentCreateWaitMs: 50 }),
      (e: Error) => e instanceof CaStoreError && /creation was interrupted/.test(e.message),
    );
    // The stray key was left alone: it is the user's to delete.
    assert.equal(await readFile(ca.keyPath, 'utf8'), ca.keyPem);
  });
});

describe('trustInstructions', { timeout: 30_000 }, () => {
  test('names every store and variable with the given paths', bounded, () => {
    const text = trustInstructions('/home/u/.hopscope/ca.pem');
    const p = '/home/u/.hopscope/ca.pem';
    for (const line of [
      `sudo cp ${p} /usr/local/share/ca-certificates/hopscope.crt && sudo update-ca-certificates`,
      `sudo trust anchor --store ${p}`,
      `sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${p}`,
      'certutil -addstore -f ROOT /home/u/.hopscope/ca.cer',
      `certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n hopscope -i ${p}`,
      `NODE_EXTRA_CA_CERTS=${p}`,
      `SSL_CERT_FILE=${p}`,
      `REQUESTS_CA_BUNDLE=${p}`,
      `CURL_CA_BUNDLE=${p}`,
    ]) {
      assert.ok(text.includes(line), `missing: ${line}`);
    }
  });

  test('quotes paths with spaces, per the path style', bounded, () => {
    const posix = trustInstructions("/tmp/my ca's/ca.pem");
    assert.ok(posix.includes(`NODE_EXTRA_CA_CERTS='/tmp/my ca'\\''s/ca.pem'`));
    const win = trustInstructions('C:\\Users\\Ann Lee\\hopscope\\ca.pem');
    assert.ok(win.includes('certutil -addstore -f ROOT "C:\\Users\\Ann Lee\\hopscope\\ca.cer"'));
  });
});
