// The text `hopscope ca` prints: how to make clients trust the local CA, per system and tool.
import { posix, win32 } from 'node:path';
import { CA_CERT_DER_FILE } from './ca-store.js';

/** `certPath` is the CA's `ca.pem`; `ca.cer` (DER) is expected next to it. */
export function trustInstructions(certPath: string): string {
  // Quote and join by the path's own shape, so the text is right whichever system prints it.
  const onWindows = certPath.includes('\\') || /^[A-Za-z]:/.test(certPath);
  const quote = onWindows ? windowsQuote : shellQuote;
  const path = onWindows ? win32 : posix;
  const pem = quote(certPath);
  const cer = quote(path.join(path.dirname(certPath), CA_CERT_DER_FILE));
  return `hopscope CA certificate: ${certPath}

Clients must trust it before hopscope can decrypt their HTTPS traffic. Trust it only on machines
you control, and keep ca-key.pem next to it private: whoever holds it can impersonate any site.

System stores (all programs that use them):
  Debian/Ubuntu:  sudo cp ${pem} /usr/local/share/ca-certificates/hopscope.crt && sudo update-ca-certificates
  Fedora/RHEL:    sudo trust anchor --store ${pem}
  macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${pem}
  Windows (administrator prompt):  certutil -addstore -f ROOT ${cer}

Firefox, and Chromium on Linux, keep their own NSS store (certutil from libnss3-tools / nss-tools):
  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n hopscope -i ${pem}
  (a new store first needs: certutil -d sql:$HOME/.pki/nssdb -N --empty-password;
   Firefox: -d sql:<its profile folder>, or Settings > Certificates > View Certificates > Import)

Per process, without touching the system (note: the last three replace the default bundle,
so only hosts reached through hopscope will verify):
  NODE_EXTRA_CA_CERTS=${pem}   Node.js (added to its built-in roots)
  SSL_CERT_FILE=${pem}         OpenSSL-based tools (Python ssl, Ruby), Go on Linux
  REQUESTS_CA_BUNDLE=${pem}    Python requests
  CURL_CA_BUNDLE=${pem}        curl

To undo: sudo rm /usr/local/share/ca-certificates/hopscope.crt && sudo update-ca-certificates --fresh
(Debian/Ubuntu), sudo trust anchor --remove ${pem} (Fedora), or delete the "hopscope CA" certificate
in Keychain Access (macOS) or certmgr.msc (Windows).
`;
}

/** Quotes a path for a POSIX shell only when it needs it. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function windowsQuote(s: string): string {
  return /^[\w:.\\/-]+$/.test(s) ? s : `"${s}"`;
}
