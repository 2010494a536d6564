// The "Edit and resend" form's text, both ways: a captured request as editable fields, and those
// fields back as the edits the API takes. Pure, so it is tested without a browser.
import type { ExchangeDetailJson, ReplayEdits } from '../../../core/src/inspector/protocol.js';

export interface ResendForm {
  method: string;
  url: string;
  /** One `Name: value` per line, in order (HTTP/2 pseudo-headers come from the method and URL). */
  headers: string;
  /** The body as text; null when it is binary or not at hand (then it goes unchanged). */
  body: string | null;
}

export function formOf(exchange: ExchangeDetailJson): ResendForm {
  const body = exchange.requestBody;
  const text = !body || body.size === 0 ? '' : body.encoding === 'utf8' && !body.truncated ? (body.data ?? '') : null;
  return {
    method: exchange.method,
    url: exchange.url,
    headers: exchange.requestHeaders
      .filter(([name]) => !name.startsWith(':'))
      .map(([name, value]) => `${name}: ${value}`)
      .join('\n'),
    body: text,
  };
}

/** The edits for the API, or the first line of the headers that is not `Name: value`. */
export function editsOf(form: ResendForm): { edits: ReplayEdits } | { error: string } {
  const headers: Array<[string, string]> = [];
  for (const [i, line] of form.headers.split('\n').entries()) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':', 1);
    if (colon < 0) return { error: `Header line ${i + 1} is not "Name: value": ${line}` };
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  const edits: ReplayEdits = { method: form.method.trim(), url: form.url.trim(), headers };
  if (form.body !== null) edits.body = form.body;
  return { edits };
}
