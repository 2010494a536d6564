// A throwaway hopscope CA for tests: a fresh root in its own temp folder, never the user's ca/.
//
//   const testCa = await makeTestCa();
//   after(() => testCa.cleanup());
//   tls.createServer({ SNICallback: testCa.minter.sniCallback('site.test') }, ...)   // hopscope's side
//   tls.connect({ port, servername: 'site.test', ca: testCa.caPem })                  // a client that trusts it
//   curl --cacert <testCa.ca.certPath> ...                                            // or by file
//
// Creating one costs ~0.3 s (two RSA 2048 keys): share it across a test file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateCa } from '../../src/ca/ca-store.js';
import type { LoadedCa } from '../../src/ca/ca-store.js';
import { LeafMinter } from '../../src/ca/leaf-minter.js';
import type { LeafMinterOptions } from '../../src/ca/leaf-minter.js';

export interface TestCa {
  /** The temp folder holding ca.pem, ca.cer and ca-key.pem. */
  dir: string;
  /** The root certificate, for a client's `ca` option. */
  caPem: string;
  /** Mints leaves and SecureContexts signed by this CA. */
  minter: LeafMinter;
  /** Everything loadOrCreateCa returned (paths, key, X509Certificate). */
  ca: LoadedCa;
  /** Removes the temp folder. */
  cleanup: () => Promise<void>;
}

export async function makeTestCa(minterOptions?: LeafMinterOptions): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'hopscope-test-ca-'));
  const ca = await loadOrCreateCa(dir);
  return {
    dir,
    caPem: ca.certPem,
    minter: new LeafMinter(ca, minterOptions),
    ca,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
