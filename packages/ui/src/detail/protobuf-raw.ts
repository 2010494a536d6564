// Protocol Buffers without a schema, the way `protoc --decode_raw` reads them: field numbers,
// wire types and values. A length-delimited field is shown as text when it is printable UTF-8,
// else as a nested message when it parses as one, else as bytes. Encoding:
// https://protobuf.dev/programming-guides/encoding/

export type RawValue =
  | { kind: 'varint'; value: bigint }
  | { kind: 'fixed64'; value: bigint }
  | { kind: 'fixed32'; value: number }
  | { kind: 'text'; value: string }
  | { kind: 'message'; fields: RawField[] }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'group'; fields: RawField[] };

export interface RawField {
  number: number;
  value: RawValue;
}

const MAX_DEPTH = 32;
const MAX_FIELD_NUMBER = 2 ** 29 - 1;

class Malformed extends Error {}

/** The fields of `bytes` read as a message, or null when they are not a well-formed one. */
export function decodeRawMessage(bytes: Uint8Array): RawField[] | null {
  try {
    return readFields(new Reader(bytes), 0, null);
  } catch (err) {
    if (err instanceof Malformed) return null;
    throw err;
  }
}

class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.done) throw new Malformed('varint runs past the end');
      const b = this.bytes[this.at++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new Malformed('varint longer than 10 bytes');
  }

  take(n: number): Uint8Array {
    if (n > this.bytes.length - this.at) throw new Malformed('field runs past the end');
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

/** Reads fields until the end, or until the end-group tag of `group` when inside one. */
function readFields(reader: Reader, depth: number, group: number | null): RawField[] {
  if (depth > MAX_DEPTH) throw new Malformed('nested too deep');
  const fields: RawField[] = [];
  while (!reader.done) {
    const tag = reader.varint();
    const number = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (number === 0 || number > MAX_FIELD_NUMBER) throw new Malformed('bad field number');
    switch (wireType) {
      case 0:
        fields.push({ number, value: { kind: 'varint', value: reader.varint() } });
        break;
      case 1:
        fields.push({ number, value: { kind: 'fixed64', value: view(reader.take(8)).getBigUint64(0, true) } });
        break;
      case 2: {
        const length = reader.varint();
        if (length > BigInt(reader.bytes.length)) throw new Malformed('length past the end');
        fields.push({ number, value: lengthDelimited(reader.take(Number(length)), depth) });
        break;
      }
      case 3:
        fields.push({ number, value: { kind: 'group', fields: readFields(reader, depth + 1, number) } });
        break;
      case 4:
        if (group !== number) throw new Malformed('end of a group that was not started');
        return fields;
      case 5:
        fields.push({ number, value: { kind: 'fixed32', value: view(reader.take(4)).getUint32(0, true) } });
        break;
      default:
        throw new Malformed(`wire type ${wireType}`);
    }
  }
  if (group !== null) throw new Malformed('group not ended');
  return fields;
}

function lengthDelimited(bytes: Uint8Array, depth: number): RawValue {
  const text = printable(bytes);
  if (text !== null) return { kind: 'text', value: text };
  if (bytes.length > 0) {
    try {
      return { kind: 'message', fields: readFields(new Reader(bytes), depth + 1, null) };
    } catch (err) {
      if (!(err instanceof Malformed)) throw err;
    }
  }
  return { kind: 'bytes', value: bytes };
}

/** The bytes as a string when they are UTF-8 without control characters (tab and newlines allowed). */
function printable(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? null : text;
}

/** A view of exactly these bytes (a Node Buffer is often a window on a larger pool). */
function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The fields in `protoc --decode_raw` style: `1: "text"`, `2: 150`, `3 { … }`, one per line. */
export function formatRawMessage(fields: RawField[], indent = ''): string {
  const lines: string[] = [];
  for (const { number, value } of fields) {
    switch (value.kind) {
      case 'message':
      case 'group':
        lines.push(`${indent}${number} {`, formatRawMessage(value.fields, `${indent}  `), `${indent}}`);
        break;
      case 'varint':
        lines.push(`${indent}${number}: ${value.value}`);
        break;
      case 'fixed64':
        lines.push(`${indent}${number}: 0x${value.value.toString(16).padStart(16, '0')}`);
        break;
      case 'fixed32':
        lines.push(`${indent}${number}: 0x${value.value.toString(16).padStart(8, '0')}`);
        break;
      case 'text':
        lines.push(`${indent}${number}: ${JSON.stringify(value.value)}`);
        break;
      case 'bytes':
        lines.push(`${indent}${number}: <${hexBytes(value.value)}>`);
        break;
    }
  }
  return lines.filter((l) => l !== '').join('\n');
}

/** Bytes as spaced hex pairs, the first `shown` of them. */
export function hexBytes(bytes: Uint8Array, shown = 64): string {
  const hex = Array.from(bytes.subarray(0, shown), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return bytes.length > shown ? `${hex} … ${bytes.length - shown} more bytes` : hex;
}
