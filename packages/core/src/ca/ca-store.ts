// The local root CA: loaded from its folder, or created there on first use.
// The key pair comes from node:crypto (fast); forge only builds and signs the certificate, once.
import { X509Certificate, createPrivateKey, generateKeyPair, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type forgeModule from 'node-forge';

const generateKeyPairAsync = promisify(generateKeyPair);

export const CA_CERT_FILE = 'ca.pem';
export const CA_CERT_DER_FILE = 'ca.cer';
export const CA_KEY_FILE = 'ca-key.pem';

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_DAYS = 3650;

/** What the minter needs from a CA. */
export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface LoadedCa extends CaMaterial {
  dir: string;
  /** `ca.pem`: the file users trust. */
  certPath: string;
  /** `ca.cer`: the same certificate in DER. */
  certDerPath: string;
  /** `ca-key.pem`: mode 0600. */
  keyPath: string;
  cert: X509Certificate;
  key: KeyObject;
  /** The CN, e.g. `hopscope CA 3fa9c2`: distinct per install. */
  commonName: string;
  /** True when this call created the CA. */
  created: boolean;
}

export interface LoadCaOptions {
  /** Where warnings go (a key file with loose permissions, an expired CA). Default: process warning. */
  warn?: (message: string) => void;
  /** How long to wait for another process that is creating the CA in `dir` right now. Default 3000 ms. */
  concurrentCreateWaitMs?: number;
}

export class CaStoreError extends Error {
  override name = 'CaStoreError';
}

/** Loads the CA from `dir`, creating the folder and a new CA there when none exists yet. */
export async function loadOrCreateCa(dir: string, options: LoadCaOptions = {}): Promise<LoadedCa> {
  const warn = options.warn ?? ((m: string) => process.emitWarning(m, 'HopscopeCaWarning'));
  const paths = caPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await keepFolderOwnerWritable(dir, warn);

  const existing = await readIfExists(paths.certPath);
  if (existing !== null) return loadExisting(paths, existing, warn);

  const fresh = await buildCa();
  try {
    // Exclusive create with the final mode: the key is never readable by others, and two
    // processes starting on an empty folder cannot both write a key.
    await writeFile(paths.keyPath, fresh.keyPem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const pem = await waitForFile(paths.certPath, options.concurrentCreateWaitMs ?? 3000);
    if (pem === null) {
      throw new CaStoreError(
        `${paths.keyPath} exists but ${paths.certPath} does not: a CA creation was interrupted ` +
          `(or another hopscope is creating it). Delete ${paths.keyPath} to create a new CA.`,
      );
    }
    return loadExisting(paths, pem, warn);
  }
  await writeAtomically(paths.certDerPath, fresh.certDer);
  // ca.pem last: its presence means the CA is complete.
  await writeAtomically(paths.certPath, fresh.certPem);
  return { ...paths, ...materialize(fresh.certPem, fresh.keyPem, paths), created: true };
}

/**
 * Whoever can write the CA folder can swap in a CA of their own, which the user's clients trust.
 * Our own folder loses the others' write access; a shared one (sticky like /tmp, or someone
 * else's) is refused rather than changed.
 */
async function keepFolderOwnerWritable(dir: string, warn: (m: string) => void): Promise<void> {
  if (process.platform === 'win32') return;
  const info = await stat(dir);
  const mode = info.mode & 0o7777;
  if ((mode & 0o022) === 0) return;
  const shown = (mode & 0o777).toString(8).padStart(4, '0');
  if (mode & 0o1000 || info.uid !== process.getuid?.()) {
    throw new CaStoreError(`${dir} is writable by others (mode ${shown}): keep the CA in a folder only you can write (--ca-dir DIR)`);
  }
  await chmod(dir, mode & ~0o022);
  warn(`${dir} was writable by group or others (mode ${shown}); removed their write access: whoever can write it can replace the CA your clients trust`);
}

function caPaths(dir: string) {
  return {
    dir,
    certPath: join(dir, CA_CERT_FILE),
    certDerPath: join(dir, CA_CERT_DER_FILE),
    keyPath: join(dir, CA_KEY_FILE),
  };
}

type CaPaths = ReturnType<typeof caPaths>;

async function loadExisting(paths: CaPaths, certPem: string, warn: (m: string) => void): Promise<LoadedCa> {
  const keyPem = await readIfExists(paths.keyPath);
  if (keyPem === null) {
    throw new CaStoreError(`${paths.certPath} exists but its private key ${paths.keyPath} is missing`);
  }
  if (process.platform !== 'win32') {
    const mode = (await stat(paths.keyPath)).mode & 0o777;
    if (mode & 0o077) {
      warn(
        `${paths.keyPath} was accessible to group or others (mode ${mode.toString(8).padStart(4, '0')}); ` +
          `changed it to 0600. Anyone with this key can impersonate any site to machines that trust the CA.`,
      );
      await chmod(paths.keyPath, 0o600);
    }
  }
  const loaded = materialize(certPem, keyPem, paths);
  if (!loaded.cert.ca) throw new CaStoreError(`${paths.certPath} is not a CA certificate`);
  if (Date.parse(loaded.cert.validTo) < Date.now()) {
    warn(`the hopscope CA in ${paths.dir} expired on ${loaded.cert.validTo}; delete the folder's files to create a new one`);
  }
  // ca.cer is derived: recreate it when someone deleted it.
  await stat(paths.certDerPath).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    await writeAtomically(paths.certDerPath, loaded.cert.raw);
  });
  return { ...paths, ...loaded, created: false };
}

function materialize(certPem: string, keyPem: string, paths: CaPaths) {
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new CaStoreError(`${paths.certPath} is not a valid PEM certificate: ${(err as Error).message}`);
  }
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new CaStoreError(`${paths.keyPath} is not a valid PEM private key: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new CaStoreError(`${paths.keyPath} does not belong to the certificate in ${paths.certPath}`);
  }
  const commonName = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? cert.subject;
  return { certPem, keyPem, cert, key, commonName };
}

async function buildCa(): Promise<{ certPem: string; certDer: Buffer; keyPem: string }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

  // forge is loaded only here, once per install: a start with an existing CA never needs it (~10 MiB).
  const forge = ((await import('node-forge')) as { default: typeof forgeModule }).default;
  const { pki, md } = forge;
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(pubPem);
  cert.serialNumber = randomSerialHex();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + CA_VALIDITY_DAYS * DAY_MS);
  // @types/node-forge types valueTagClass as a Class; forge actually wants the string Type here.
  const utf8 = forge.asn1.Type.UTF8 as unknown as forgeModule.asn1.Class;
  const name: forgeModule.pki.CertificateField[] = [
    { shortName: 'O', value: 'hopscope', valueTagClass: utf8 },
    { shortName: 'CN', value: `hopscope CA ${randomBytes(3).toString('hex')}`, valueTagClass: utf8 },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  // Signing once per install with forge's pure-JS RSA is fine (~20 ms).
  cert.sign(pki.privateKeyFromPem(keyPem), md.sha256.create());
  const certDer = Buffer.from(forge.asn1.toDer(pki.certificateToAsn1(cert)).getBytes(), 'binary');
  // Node's PEM has plain \n line ends (forge writes \r\n).
  return { certPem: new X509Certificate(certDer).toString(), certDer, keyPem };
}

/** A random positive DER INTEGER of `bytes` bytes, as forge wants it (hex, minimal encoding). */
export function randomSerialHex(bytes = 16): string {
  const b = randomBytes(bytes);
  b[0] = b[0] & 0x7f || 0x01; // high bit clear (positive), first byte non-zero (minimal DER)
  return b.toString('hex');
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function writeAtomically(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

async function waitForFile(path: string, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readIfExists(path);
    if (text !== null || Date.now() >= deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
