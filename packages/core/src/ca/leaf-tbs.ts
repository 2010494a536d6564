// The to-be-signed part of a leaf certificate, laid out directly in DER. forge's general-purpose
// certificate object took as long to build (~0.25 ms) as the CA's signature takes to make, on the
// path of every first connection to a host. All but the serial, the validity, the subject and
// the SAN is the same for every leaf of a run and is encoded once.
import { createHash } from 'node:crypto';
import { BIT_STRING, BOOLEAN, INTEGER, OCTET_STRING, SEQUENCE, SET, UTF8_STRING, children, oid, readElement, time, tlv, type Element } from './der.js';

/** AlgorithmIdentifier { sha256WithRSAEncryption, NULL }: the CA signs with RSA. */
export const SHA256_WITH_RSA_ALG_ID = Buffer.from('300d06092a864886f70d01010b0500', 'hex');

const VERSION_3 = Buffer.from('a003020102', 'hex');
const ORGANIZATION = tlv(SET, tlv(SEQUENCE, oid('2.5.4.10'), tlv(UTF8_STRING, Buffer.from('hopscope'))));
const COMMON_NAME_OID = oid('2.5.4.3');
const SAN_OID = oid('2.5.29.17');
const DNS_NAME = 0x82; // [2] IMPLICIT IA5String
const IP_ADDRESS = 0x87; // [7] IMPLICIT OCTET STRING
const EXTENSIONS = 0xa3; // [3] EXPLICIT

function extension(id: string, value: Buffer, critical = false): Buffer {
  return tlv(SEQUENCE, oid(id), ...(critical ? [tlv(BOOLEAN, Buffer.from([0xff]))] : []), tlv(OCTET_STRING, value));
}

export interface LeafFields {
  /** Positive, minimal: hex whose first byte is 0x01–0x7f. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** Normalised DNS name or IP address. */
  host: string;
  ip: boolean;
  /** Whether the subject carries the host as CN (X.520 allows 64 characters at most). */
  commonName: boolean;
}

export class LeafTbs {
  private readonly issuer: Buffer;
  /** basicConstraints, keyUsage, extKeyUsage (before the SAN) and authorityKeyIdentifier (after). */
  private readonly extensionsBefore: Buffer;
  private readonly extensionsAfter: Buffer;

  /** `caCertDer` gives the issuer name (copied byte for byte), `caKeyId` the authority key id. */
  constructor(caCertDer: Buffer, private readonly spki: Buffer, caKeyId: Buffer) {
    this.issuer = subjectOf(caCertDer);
    this.extensionsBefore = Buffer.concat([
      extension('2.5.29.19', tlv(SEQUENCE)), // basicConstraints: not a CA
      // An ECDSA key signs; it never enciphers keys (that usage belongs to RSA key transport).
      extension('2.5.29.15', tlv(BIT_STRING, Buffer.from([0x07, 0x80])), true), // keyUsage: digitalSignature
      extension('2.5.29.37', tlv(SEQUENCE, oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
    ]);
    this.extensionsAfter = extension('2.5.29.35', tlv(SEQUENCE, tlv(0x80, caKeyId))); // authorityKeyIdentifier
  }

  build(leaf: LeafFields): Buffer {
    const subject = leaf.commonName
      ? tlv(SEQUENCE, ORGANIZATION, tlv(SET, tlv(SEQUENCE, COMMON_NAME_OID, tlv(UTF8_STRING, Buffer.from(leaf.host, 'utf8')))))
      : tlv(SEQUENCE, ORGANIZATION);
    const name = leaf.ip ? tlv(IP_ADDRESS, ipBytes(leaf.host)) : tlv(DNS_NAME, Buffer.from(leaf.host, 'ascii'));
    const san = tlv(SEQUENCE, SAN_OID, tlv(OCTET_STRING, tlv(SEQUENCE, name)));
    return tlv(
      SEQUENCE,
      VERSION_3,
      tlv(INTEGER, Buffer.from(leaf.serialHex, 'hex')),
      SHA256_WITH_RSA_ALG_ID,
      this.issuer,
      tlv(SEQUENCE, time(leaf.notBefore), time(leaf.notAfter)),
      subject,
      this.spki,
      tlv(EXTENSIONS, tlv(SEQUENCE, this.extensionsBefore, san, this.extensionsAfter)),
    );
  }
}

/** The fields of a certificate's TBSCertificate, the optional version always counted (undefined when absent). */
function tbsFields(certDer: Buffer): { version?: Element; subject: Element; spki: Element; extensions?: Element } {
  const certificate = readElement(certDer, 0);
  const [tbs] = children(certDer, certificate);
  const fields = children(certDer, tbs);
  const at = fields[0].tag === 0xa0 ? 0 : 1; // [version] serial signature issuer validity subject spki ... [3]
  return {
    version: at === 0 ? fields[0] : undefined,
    subject: fields[5 - at],
    spki: fields[6 - at],
    extensions: fields.find((f) => f.tag === EXTENSIONS),
  };
}

/** The subject Name of a certificate, as it is encoded there. */
function subjectOf(certDer: Buffer): Buffer {
  const { subject } = tbsFields(certDer);
  return certDer.subarray(subject.offset, subject.end);
}

const SKI_OID = oid('2.5.29.14');

/**
 * A CA certificate's subjectKeyIdentifier, or, when it has none, the SHA-1 of its public key
 * bits (RFC 5280 §4.2.1.2, method 1), which is what a leaf's authorityKeyIdentifier names.
 */
export function subjectKeyIdOf(certDer: Buffer): Buffer {
  const { spki, extensions } = tbsFields(certDer);
  if (extensions) {
    const [list] = children(certDer, extensions);
    for (const ext of children(certDer, list)) {
      const parts = children(certDer, ext);
      if (!certDer.subarray(parts[0].offset, parts[0].end).equals(SKI_OID)) continue;
      const value = parts[parts.length - 1]; // OCTET STRING wrapping the KeyIdentifier OCTET STRING
      const keyId = readElement(certDer, value.start);
      return Buffer.from(certDer.subarray(keyId.start, keyId.end));
    }
  }
  const bits = children(certDer, spki)[1];
  return createHash('sha1').update(certDer.subarray(bits.start + 1, bits.end)).digest();
}

/** 4 bytes for IPv4, 16 for IPv6 (compressed `::` and a dotted IPv4 tail accepted). */
export function ipBytes(address: string): Buffer {
  if (!address.includes(':')) return Buffer.from(address.split('.').map(Number));
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}
