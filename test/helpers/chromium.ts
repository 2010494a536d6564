// Headless Chromium for tests (Debian's chromium-headless-shell, driven by playwright-core), and
// how to make it trust hopscope's certificates without an NSS database: every leaf of one run
// shares one key, so its SPKI hash on --ignore-certificate-errors-spki-list covers them all.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** Flags that keep Chromium quiet: no background requests through the proxy, no QUIC. */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function chromiumPath(): string {
  const candidates = [process.env.HOPSCOPE_CHROMIUM, '/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].filter(Boolean) as string[];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error('No Chromium found: apt-get install chromium-headless-shell (or set HOPSCOPE_CHROMIUM)');
  return found;
}

/**
 * Base64 SHA-256 of the SubjectPublicKeyInfo of the certificate a TLS server at host:port presents;
 * with `through` (e.g. a CONNECT tunnel of the proxy) the handshake runs over that socket, SNI `host`.
 */
export async function serverSpkiHash(host: string, port: number, ca: string, through?: Duplex): Promise<string> {
  const socket = through ? tls.connect({ socket: through, servername: host, ca }) : tls.connect({ host, port, ca });
  try {
    await once(socket, 'secureConnect');
    const spki = socket.getPeerX509Certificate()!.publicKey.export({ type: 'spki', format: 'der' });
    return createHash('sha256').update(spki).digest('base64');
  } finally {
    socket.destroy();
  }
}
