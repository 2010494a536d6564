// Leaf certificates minted on the fly for each intercepted host, and a bounded cache of the
// tls.SecureContexts built from them. The TBSCertificate is laid out in DER (leaf-tbs.ts) and
// signed natively with the CA's RSA key (forge's pure-JS signature cost ~21 ms, node:crypto's
// ~0.3 ms). The leaf key is ECDSA P-256: every intercepted handshake signs with it, and an
// ECDSA signature costs a few hundredths of what an RSA-2048 one does.
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { CertificateInfo } from '../capture/events.js';
import { randomSerialHex, type CaMaterial } from './ca-store.js';
import { certificateInfo } from './cert-info.js';
import { BIT_STRING, SEQUENCE, tlv } from './der.js';
import { KeyedContextPool } from './keyed-context-pool.js';
import { leafCertificateInfo } from './leaf-info.js';
import { LeafTbs, SHA256_WITH_RSA_ALG_ID, subjectKeyIdOf } from './leaf-tbs.js';
import { LruMap } from '../util/lru-map.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Browsers reject leaves valid for more than 398 days; 396 ahead plus one backdated day stays under. */
const LEAF_DAYS_AHEAD = 396;
/** A cached context is replaced this long before its certificate expires. */
const EXPIRY_MARGIN_MS = DAY_MS;
/** Longest CN that X.520 allows (ub-common-name). */
const MAX_CN_LENGTH = 64;
const DNS_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

export interface MintedLeaf {
  /** The normalised host the certificate is for (lower case, no brackets or trailing dot). */
  host: string;
  /** Whether `host` is an IP address (the SAN is an iPAddress, not a dNSName). */
  ip: boolean;
  /** As the capture writes names: `O=hopscope, CN=host`. */
  subject: string;
  certPem: string;
  /** The minter's leaf key: the same for every host of one minter. */
  keyPem: string;
  certDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Hex, as in the certificate. */
  serialNumber: string;
}

export interface LeafMinterOptions {
  /** Most SecureContexts kept (least recently used go first). Default 1000. */
  cacheSize?: number;
  /** Send the CA certificate after the leaf (lets SPKI pinning of the CA work). Default true. */
  includeCaInChain?: boolean;
  /** Extra options for every SecureContext (ciphers, minVersion, …); cert and key are ours. */
  secureContextOptions?: tls.SecureContextOptions;
  /** Clock in epoch ms, for validity dates and cache expiry. Default Date.now. */
  now?: () => number;
}

export interface LeafMinterStats {
  mints: number;
  hits: number;
  evictions: number;
}

interface CacheEntry {
  context: tls.SecureContext;
  leaf: MintedLeaf;
  /** What the capture records about the leaf. */
  info: CertificateInfo;
  expiresAt: number;
}

interface ParsedHost {
  name: string;
  ip: boolean;
}

export class LeafMinter {
  readonly keyPem: string;
  readonly stats: LeafMinterStats = { mints: 0, hits: 0, evictions: 0 };
  private readonly caPem: string;
  private readonly caKey: KeyObject;
  private readonly caNotAfter: number;
  private readonly tbs: LeafTbs;
  private readonly includeCaInChain: boolean;
  private readonly contexts: KeyedContextPool;
  /** The CA's subject as the capture writes names: the issuer of every leaf. */
  private readonly caName: string;
  private readonly now: () => number;
  private readonly cache: LruMap<string, CacheEntry>;

  constructor(ca: CaMaterial, options: LeafMinterOptions = {}) {
    this.caPem = ca.certPem;
    this.caKey = createPrivateKey(ca.keyPem);
    if (this.caKey.asymmetricKeyType !== 'rsa') {
      throw new TypeError(`LeafMinter: the CA key must be RSA, got ${this.caKey.asymmetricKeyType}`);
    }
    const caCert = new X509Certificate(ca.certPem);
    this.caNotAfter = Date.parse(caCert.validTo);

    // One leaf key per minter: a per-host key buys nothing here.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const caDer = Buffer.from(caCert.raw);
    this.tbs = new LeafTbs(caDer, publicKey.export({ type: 'spki', format: 'der' }), subjectKeyIdOf(caDer));

    this.cache = new LruMap(Math.max(1, options.cacheSize ?? 1000));
    this.includeCaInChain = options.includeCaInChain ?? true;
    this.contexts = new KeyedContextPool({ ...options.secureContextOptions, key: this.keyPem });
    this.caName = certificateInfo(caCert).subject;
    this.now = options.now ?? Date.now;
  }

  /** Mints a fresh certificate for `host` (a DNS name, or an IPv4/IPv6 literal). Not cached. */
  mint(host: string): MintedLeaf {
    const parsed = parseHost(host);
    const now = this.now();
    const notBefore = new Date(now - DAY_MS);
    const notAfter = new Date(Math.min(now + LEAF_DAYS_AHEAD * DAY_MS, this.caNotAfter));

    const serialNumber = randomSerialHex(16);
    const commonName = parsed.name.length <= MAX_CN_LENGTH;
    const tbs = this.tbs.build({ serialHex: serialNumber, notBefore, notAfter, host: parsed.name, ip: parsed.ip, commonName });
    const signature = sign('sha256', tbs, this.caKey);
    const certDer = tlv(SEQUENCE, tbs, SHA256_WITH_RSA_ALG_ID, tlv(BIT_STRING, ZERO, signature));
    this.stats.mints++;
    return {
      host: parsed.name,
      ip: parsed.ip,
      subject: commonName ? `O=hopscope, CN=${parsed.name}` : 'O=hopscope',
      certPem: toPem(certDer),
      keyPem: this.keyPem,
      certDer,
      notBefore,
      notAfter,
      serialNumber,
    };
  }

  /** The cached SecureContext for `host`, minting one when missing or close to expiry. */
  secureContextFor(host: string): tls.SecureContext {
    return this.entryFor(host).context;
  }

  /** The certificate behind `secureContextFor(host)` (what the client will be shown). */
  leafFor(host: string): MintedLeaf {
    return this.entryFor(host).leaf;
  }

  /** What the capture records about the certificate behind `secureContextFor(host)`. */
  certificateInfoFor(host: string): CertificateInfo {
    return this.entryFor(host).info;
  }

  /**
   * An SNICallback for tls.createServer: the servername the client sent, or `fallbackHost`
   * (e.g. the CONNECT target) when it sent none.
   */
  sniCallback(fallbackHost: string): (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void {
    return (servername, cb) => {
      let context: tls.SecureContext;
      try {
        context = this.secureContextFor(servername || fallbackHost);
      } catch (err) {
        cb(err as Error);
        return;
      }
      cb(null, context);
    };
  }

  /** Contexts currently cached. */
  get cachedCount(): number {
    return this.cache.size;
  }

  private entryFor(host: string): CacheEntry {
    const key = parseHost(host).name;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > this.now()) {
      this.stats.hits++;
      return cached;
    }
    const leaf = this.mint(key);
    const context = this.contexts.take(this.includeCaInChain ? leaf.certPem + this.caPem : leaf.certPem);
    const entry: CacheEntry = { context, leaf, info: leafCertificateInfo(leaf, this.caName), expiresAt: leaf.notAfter.getTime() - EXPIRY_MARGIN_MS };
    this.stats.evictions += this.cache.set(key, entry);
    return entry;
  }
}

/** Normalises a host for a certificate: lower case, no `[]`, no trailing dot, canonical IPv6. */
export function parseHost(host: string): ParsedHost {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  else if (h.endsWith('.')) h = h.slice(0, -1);
  const family = isIP(h);
  if (family === 4) return { name: h, ip: true };
  if (family === 6) {
    const noZone = h.replace(/%.*$/, '');
    // The WHATWG URL parser prints IPv6 in its canonical compressed form (RFC 5952).
    return { name: new URL(`http://[${noZone}]/`).hostname.slice(1, -1), ip: true };
  }
  if (h.length === 0 || h.length > 253 || !DNS_NAME.test(h)) {
    throw new TypeError(`cannot mint a certificate for ${JSON.stringify(host)}: not a host name or IP address`);
  }
  return { name: h, ip: false };
}

const ZERO = Buffer.from([0]);

function toPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}
