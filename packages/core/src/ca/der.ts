// Just enough DER to lay out and read X.509 structures hopscope builds itself (ITU-T X.690).

/** One tag-length-value: `tag` is the whole identifier octet, `content` the value bytes. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0] : Buffer.concat(content);
  const n = body.length;
  let header: Buffer;
  if (n < 0x80) header = Buffer.from([tag, n]);
  else if (n < 0x100) header = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) header = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else header = Buffer.from([tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([header, body]);
}

export const SEQUENCE = 0x30;
export const SET = 0x31;
export const INTEGER = 0x02;
export const BIT_STRING = 0x03;
export const OCTET_STRING = 0x04;
export const OID = 0x06;
export const UTF8_STRING = 0x0c;
export const BOOLEAN = 0x01;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return tlv(OID, Buffer.from(bytes));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, to the second, in UTC. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = date.getUTCFullYear();
  return year < 2050 && year >= 1950 ? tlv(UTC_TIME, Buffer.from(`${digits.slice(2)}Z`)) : tlv(GENERALIZED_TIME, Buffer.from(`${digits}Z`));
}

export interface Element {
  tag: number;
  /** Offset of the first value byte. */
  start: number;
  /** Offset just past the value. */
  end: number;
  /** Offset of the tag: `der.subarray(offset, end)` is the whole element. */
  offset: number;
}

/** Reads the element at `offset` (definite lengths only, as DER requires). */
export function readElement(der: Buffer, offset: number): Element {
  const tag = der[offset];
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3) throw new Error('DER: unsupported length');
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | der[start + i];
    start += count;
  }
  if (tag === undefined || start + length > der.length) throw new Error('DER: truncated element');
  return { tag, start, end: start + length, offset };
}

/** The elements directly inside a constructed one. */
export function children(der: Buffer, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readElement(der, at);
    out.push(child);
    at = child.end;
  }
  return out;
}
