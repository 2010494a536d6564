// What the capture records about a leaf hopscope minted, written from what the minter put in it
// rather than parsed back out of the DER: X509Certificate costs a few tenths of a millisecond per
// certificate, on the path of every first connection to a host. IP leaves are rare and OpenSSL
// prints IPv6 SANs its own way, so they are still parsed. The tests hold both ways equal.
import { X509Certificate, createHash } from 'node:crypto';
import type { CertificateInfo } from '../capture/events.js';
import { certificateInfo } from './cert-info.js';
import type { MintedLeaf } from './leaf-minter.js';

/** `issuer` is the CA's subject as the capture writes names (`O=a, CN=b`). */
export function leafCertificateInfo(leaf: MintedLeaf, issuer: string): CertificateInfo {
  if (leaf.ip) return certificateInfo(new X509Certificate(leaf.certDer));
  return {
    subject: leaf.subject,
    issuer,
    sans: [`DNS:${leaf.host}`],
    validFrom: wholeSeconds(leaf.notBefore),
    validTo: wholeSeconds(leaf.notAfter),
    fingerprint256: colonHex(createHash('sha256').update(leaf.certDer).digest('hex')),
    serialNumber: leaf.serialNumber.toUpperCase(),
  };
}

/** Certificates hold UTCTime, to the second. */
function wholeSeconds(date: Date): string {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();
}

function colonHex(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}
