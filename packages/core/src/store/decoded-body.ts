// `body:` searches what the content coding hides: a gzip, deflate or br body is searched decoded,
// as mitmproxy and the browsers' devtools do, since that is where the text a person types lives.
// Bodies are stored as they came (docs/schema.md); decoding happens only while a filter looks. A
// truncated body (past the body cap) is decoded as far as it goes; a coding Node cannot undo, a
// broken one, or one that would decode past the cap (a zip bomb) is searched as stored.
import type Database from 'better-sqlite3';
import type { HeaderList } from '../capture/events.js';
import { decodeContent } from '../decode/content-coding.js';
import { contentCodings } from '../decode/content-encoding-header.js';
import { DECODED_BODY_SQL_FUNCTION } from '../filter/to-sql.js';

/** The body with its content codings undone; as stored when there are none or that fails. */
export function decodedBody(data: Uint8Array, headers: HeaderList | null | undefined): Uint8Array {
  const codings = contentCodings(headers ?? null);
  if (codings.length === 0) return data;
  try {
    return decodeContent(Buffer.from(data.buffer, data.byteOffset, data.byteLength), codings);
  } catch {
    return data;
  }
}

/** Lets the filter's SQL call decodedBody(data, headersJson) (openStore does it for every connection). */
export function registerFilterFunctions(db: Database.Database): void {
  db.function(DECODED_BODY_SQL_FUNCTION, { deterministic: true }, (data: unknown, headersJson: unknown) => {
    if (!(data instanceof Uint8Array)) return data as null;
    let headers: HeaderList | null = null;
    try {
      headers = typeof headersJson === 'string' ? (JSON.parse(headersJson) as HeaderList) : null;
    } catch {
      // unreadable headers: searched as stored
    }
    const out = decodedBody(data, headers);
    return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength); // SQLite takes a Buffer as a BLOB
  });
}
