// Certificates as the capture events describe them (CertificateInfo in capture/events.ts).
// Both inputs go through X509Certificate so a peer's chain and our own leaves read the same.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { CertificateInfo } from '../capture/events.js';
import { LruMap } from '../util/lru-map.js';

/** Longest chain walked; real ones are 2–4 certificates. */
const MAX_CHAIN = 16;
/** Issuer certificates described so far, by SHA-256 fingerprint (most recently used last). */
const issuers = new LruMap<string, CertificateInfo>(256);
/** Whole chains described so far, by the SHA-256 fingerprint of their leaf. */
const chains = new LruMap<string, CertificateInfo[]>(1024);

export function certificateInfo(cert: PeerCertificate | X509Certificate): CertificateInfo {
  const x509 = cert instanceof X509Certificate ? cert : fromPeer(cert);
  return {
    subject: distinguishedName(x509.subject),
    issuer: distinguishedName(x509.issuer),
    sans: splitSans(x509.subjectAltName),
    validFrom: isoDate(x509.validFrom),
    validTo: isoDate(x509.validTo),
    fingerprint256: x509.fingerprint256,
    serialNumber: x509.serialNumber,
  };
}

/**
 * The chain the peer presented, leaf first, up to where an issuer link points back at itself.
 * `presented` is that chain when Node already built it (for the identity check).
 */
export function chainInfo(socket: TLSSocket, presented?: PeerCertificate): CertificateInfo[] {
  // Node builds the whole peer chain in ~0.3 ms, the leaf alone in a quarter of that. A server
  // presents one chain with its certificate, so a leaf seen before (another connection, another
  // name on the same certificate) reuses the description made then, and issuers (shared by many
  // hosts) are described once each. (Not getPeerX509Certificate for the key: in Node 20,
  // getPeerCertificate returns nothing after it.)
  const key = (presented ?? socket.getPeerCertificate(false))?.fingerprint256;
  const known = key ? chains.get(key) : undefined;
  if (known) return known;
  const chain = walkChain(presented ?? socket.getPeerCertificate(true));
  if (key && chain.length > 0) chains.set(key, chain);
  return chain;
}

/** The chain from a detailed peer certificate (getPeerCertificate(true)), leaf first. */
function walkChain(leaf: PeerCertificate | undefined): CertificateInfo[] {
  const chain: CertificateInfo[] = [];
  const seen = new Set<PeerCertificate>();
  let cert: PeerCertificate | undefined = leaf;
  while (cert?.raw && !seen.has(cert) && chain.length < MAX_CHAIN) {
    seen.add(cert);
    chain.push(chain.length === 0 ? certificateInfo(cert) : issuerInfo(cert));
    const issuer: PeerCertificate | undefined = (cert as { issuerCertificate?: PeerCertificate }).issuerCertificate;
    cert = issuer === cert ? undefined : issuer;
  }
  return chain;
}

function issuerInfo(cert: PeerCertificate): CertificateInfo {
  const known = issuers.get(cert.fingerprint256);
  if (known) return known;
  const info = certificateInfo(cert);
  issuers.set(cert.fingerprint256, info);
  return info;
}

/** The certificate this side presented (for the client leg: hopscope's leaf), or [] if none. */
export function localCertificateInfo(socket: TLSSocket): CertificateInfo[] {
  const x509 = socket.getX509Certificate();
  return x509 ? [certificateInfo(x509)] : [];
}

function fromPeer(cert: PeerCertificate): X509Certificate {
  if (!cert.raw) throw new TypeError('certificateInfo: the peer certificate has no raw DER (no certificate was presented)');
  return new X509Certificate(cert.raw);
}

/** Node prints one attribute per line (`CN=a\nO=b`); events carry `CN=a, O=b`. */
function distinguishedName(lines: string): string {
  return lines.split('\n').filter(Boolean).join(', ');
}

function isoDate(nodeDate: string): string {
  const ms = Date.parse(nodeDate);
  return Number.isNaN(ms) ? nodeDate : new Date(ms).toISOString();
}

/**
 * Splits Node's `DNS:a, IP Address:1.2.3.4` list. Node quotes an entry that contains a comma
 * or other special characters (`DNS:"a, b"`), so a plain split on ", " is not enough.
 */
export function splitSans(list: string | undefined): string[] {
  if (!list) return [];
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (quoted && c === '\\' && i + 1 < list.length) {
      current += c + list[++i];
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (!quoted && c === ',' && list[i + 1] === ' ') {
      out.push(current);
      current = '';
      i++;
    } else {
      current += c;
    }
  }
  if (current) out.push(current);
  return out;
}
