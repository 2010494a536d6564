// The filter fields: each turns the text after `field:` into a leaf, or explains what it expected.
// docs/filter.md documents the same table; keep them together.
import type { FailureReason, HttpProtocol } from '../capture/events.js';
import type { ExchangeState } from '../store/row-types.js';
import { asciiLower, asciiUpper, type FilterLeaf, type HasWhat, type NumberTest } from './ast.js';

/** Thrown by a field's value parser; the parser adds the position of the value. */
export class FieldValueError extends Error {}

type FieldParser = (value: string) => FilterLeaf;

const STATES: readonly ExchangeState[] = ['pending', 'responded', 'complete', 'failed'];
const HAS: readonly HasWhat[] = ['websocket', 'error', 'response', 'request-body', 'response-body'];
const REASONS: readonly FailureReason[] = [
  'dns', 'refused', 'unreachable', 'timeout', 'reset', 'aborted', 'bad-request', 'headers-too-large',
  'cert-rejected', 'upstream-cert', 'tls', 'closed', 'decode', 'internal',
];
const ALL_HTTP: HttpProtocol[] = ['HTTP/1.0', 'HTTP/1.1', 'h2', 'h2c'];
const PROTOCOLS: Record<string, { protocols: HttpProtocol[]; websocket: boolean }> = {
  'http/1.0': { protocols: ['HTTP/1.0'], websocket: false },
  'http/1.1': { protocols: ['HTTP/1.1'], websocket: false },
  http1: { protocols: ['HTTP/1.0', 'HTTP/1.1'], websocket: false },
  h1: { protocols: ['HTTP/1.0', 'HTTP/1.1'], websocket: false },
  h2: { protocols: ['h2'], websocket: false },
  h2c: { protocols: ['h2c'], websocket: false },
  http2: { protocols: ['h2', 'h2c'], websocket: false },
  ws: { protocols: ALL_HTTP, websocket: true },
  websocket: { protocols: ALL_HTTP, websocket: true },
  'ws-h1': { protocols: ['HTTP/1.0', 'HTTP/1.1'], websocket: true },
  'ws-h2': { protocols: ['h2', 'h2c'], websocket: true },
};

const oneOf = (what: string, options: readonly string[]) => `${what} must be one of: ${options.join(', ')}.`;

function text(field: string, value: string): string {
  if (value === '') throw new FieldValueError(`Expected text after "${field}:" (quote it if it contains spaces).`);
  return asciiLower(value);
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };
const TIME_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000 };

/** `200`, `>=400`, `<1kb`, `200-299`, `4xx` (with `classes`), numbers with an optional unit. */
export function parseNumberTest(value: string, units: Record<string, number>, what: string, classes = false): NumberTest {
  const v = asciiLower(value.trim());
  const hint = `Use a number like 200, a comparison like >=400${classes ? ', a class like 4xx' : ''} or a range like 200-299.`;
  if (classes && /^[1-5]xx$/.test(v)) {
    const base = Number(v[0]) * 100;
    return { op: 'range', min: base, max: base + 99 };
  }
  const num = (s: string): number => {
    const m = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(s);
    if (!m || !(m[2] in units)) {
      const unitHint = Object.keys(units).filter(Boolean);
      throw new FieldValueError(`"${value}" is not a ${what}. ${hint}${unitHint.length ? ` Units: ${unitHint.join(', ')}.` : ''}`);
    }
    return Number(m[1]) * units[m[2]];
  };
  const range = /^([^<>=-]+)-([^<>=-]+)$/.exec(v);
  if (range) {
    const min = num(range[1]);
    const max = num(range[2]);
    if (min > max) throw new FieldValueError(`The range "${value}" is empty: the first number must not exceed the second.`);
    return { op: 'range', min, max };
  }
  const cmp = /^(<=|>=|<|>|=)?(.*)$/.exec(v)!;
  const op = ({ '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge', '=': 'eq' } as const)[cmp[1] as '<'] ?? 'eq';
  if (cmp[2] === '') throw new FieldValueError(`Expected a ${what} after "${cmp[1] ?? ''}". ${hint}`);
  return { op, value: num(cmp[2]) };
}

/** `name` or `name=text` (the value contains text). */
function header(side: 'request' | 'response' | 'any', field: string): FieldParser {
  return (value) => {
    const eq = value.indexOf('=');
    const name = asciiLower(eq < 0 ? value : value.slice(0, eq));
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw new FieldValueError(`Expected a header name after "${field}:", like ${field}:content-type or ${field}:content-type=json.`);
    }
    return { type: 'header', side, name, value: eq < 0 ? null : asciiLower(value.slice(eq + 1)) };
  };
}

export const FIELDS: Record<string, FieldParser> = {
  url: (v) => ({ type: 'url', text: text('url', v) }),
  host: (v) => {
    const pattern = text('host', v);
    if (!/^[a-z0-9.*:[\]_-]+$/.test(pattern)) throw new FieldValueError(`"${v}" is not a host name (letters, digits, dots, dashes and * wildcards).`);
    return { type: 'host', pattern };
  },
  method: (v) => {
    if (!/^[A-Za-z-]+$/.test(v)) throw new FieldValueError(`"${v}" is not an HTTP method, like GET or POST.`);
    return { type: 'method', method: asciiUpper(v) };
  },
  status: (v) => ({ type: 'status', test: parseNumberTest(v, { '': 1 }, 'status', true) }),
  protocol: (v) => {
    const p = PROTOCOLS[asciiLower(v)];
    if (!p) throw new FieldValueError(oneOf('protocol', Object.keys(PROTOCOLS)));
    return { type: 'protocol', protocols: [...p.protocols], websocket: p.websocket };
  },
  scheme: (v) => {
    const s = asciiLower(v);
    if (s !== 'http' && s !== 'https') throw new FieldValueError(oneOf('scheme', ['http', 'https']));
    return { type: 'scheme', scheme: s };
  },
  has: (v) => {
    const what = asciiLower(v) as HasWhat;
    if (!HAS.includes(what)) throw new FieldValueError(oneOf('has', HAS));
    return { type: 'has', what };
  },
  state: (v) => {
    const state = asciiLower(v) as ExchangeState;
    if (!STATES.includes(state)) throw new FieldValueError(oneOf('state', STATES));
    return { type: 'state', state };
  },
  error: (v) => {
    const reason = asciiLower(v) as FailureReason;
    if (reason === ('*' as FailureReason) || reason === ('any' as FailureReason)) return { type: 'has', what: 'error' };
    if (!REASONS.includes(reason)) throw new FieldValueError(oneOf('error', ['*', ...REASONS]));
    return { type: 'error', reason };
  },
  header: header('any', 'header'),
  reqheader: header('request', 'reqheader'),
  resheader: header('response', 'resheader'),
  body: (v) => ({ type: 'body', side: 'any', text: text('body', v) }),
  reqbody: (v) => ({ type: 'body', side: 'request', text: text('reqbody', v) }),
  resbody: (v) => ({ type: 'body', side: 'response', text: text('resbody', v) }),
  type: (v) => ({ type: 'type', text: text('type', v) }),
  size: (v) => ({ type: 'size', side: 'response', test: parseNumberTest(v, SIZE_UNITS, 'size') }),
  reqsize: (v) => ({ type: 'size', side: 'request', test: parseNumberTest(v, SIZE_UNITS, 'size') }),
  duration: (v) => ({ type: 'duration', test: parseNumberTest(v, TIME_UNITS, 'duration') }),
  conn: (v) => {
    if (!/^\d+$/.test(v)) throw new FieldValueError(`"${v}" is not a connection id (a whole number).`);
    return { type: 'conn', id: Number(v) };
  },
};

/** Other spellings people type. */
export const FIELD_ALIASES: Record<string, string> = {
  domain: 'host',
  code: 'status',
  proto: 'protocol',
  'status-code': 'status',
  'content-type': 'type',
  connection: 'conn',
  is: 'has',
  'request-header': 'reqheader',
  'response-header': 'resheader',
  'request-body': 'reqbody',
  'response-body': 'resbody',
};

export const FIELD_NAMES = Object.keys(FIELDS);
