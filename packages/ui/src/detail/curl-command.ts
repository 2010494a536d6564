// "Copy as curl": the captured request as a command that sends it again, as browsers' devtools
// write it. Headers keep their order, case and duplicates; HTTP/2 pseudo-headers become the URL,
// the method and --http2; a text body goes in --data-binary. A body that is binary, truncated or
// not held inline cannot be typed into a shell line: the command says so instead of sending a
// different body.
import type { ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';

export interface CurlCommand {
  command: string;
  /** The request had a body the command does not carry. */
  bodyLeftOut: boolean;
}

/** POSIX shell single quotes: everything literal, a quote written as '\''. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** curl computes these itself from the URL and the body; sending the captured ones could contradict it. */
const COMPUTED = new Set(['content-length', 'host', 'connection', 'transfer-encoding']);

export function curlCommand(exchange: ExchangeDetailJson): CurlCommand {
  const args = ['curl'];
  const h2 = exchange.protocol === 'h2' || exchange.protocol === 'h2c';
  if (h2) args.push(exchange.protocol === 'h2c' ? '--http2-prior-knowledge' : '--http2');
  const body = exchange.requestBody;
  const textBody = body && body.encoding === 'utf8' && !body.truncated ? (body.data ?? '') : null;
  const bodyLeftOut = body !== null && body.size > 0 && textBody === null;
  if (exchange.method !== (textBody ? 'POST' : 'GET')) args.push('-X', shellQuote(exchange.method));
  if (/[[\]{}]/.test(exchange.url)) args.push('--globoff'); // curl would read brackets and braces as URL globs
  args.push(shellQuote(exchange.url));
  let compressed = false;
  for (const [name, value] of exchange.requestHeaders) {
    const lower = name.toLowerCase();
    if (name.startsWith(':') || COMPUTED.has(lower)) continue;
    if (lower === 'accept-encoding' && /\b(gzip|deflate|br)\b/i.test(value)) compressed = true;
    args.push('-H', shellQuote(`${name}: ${value}`));
  }
  if (compressed) args.push('--compressed'); // curl asks for the same codings and decodes what comes back
  if (textBody) args.push('--data-binary', shellQuote(textBody));
  let command = args.join(' ');
  if (bodyLeftOut) {
    const kind = body!.truncated ? 'truncated' : body!.encoding === 'omitted' ? 'large' : 'binary';
    command += `  # the ${kind} request body (${body!.size} bytes) is not included`;
  }
  return { command, bodyLeftOut };
}
