// The inspector's HAR download, `GET /api/har[?filter=EXPR]`: the same streaming exporter as
// `hopscope har`, writing straight into the response with its backpressure. The inspector calls
// this from its API router after its security checks.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Database from 'better-sqlite3';
import { matchesFilter, parseFilter } from '../filter/index.js';
import { decodedBody } from '../store/decoded-body.js';
import { sendError } from '../inspector/api-routes.js';
import { writeHar } from './har-writer.js';

export const HAR_ROUTE = '/api/har';

/** Answers `GET /api/har`; returns false for any other path. */
export function handleHarRoute(db: Database.Database, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  if (url.pathname !== HAR_ROUTE) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, 405, 'method-not-allowed', 'The HAR export is read-only: use GET.');
    return true;
  }
  const source = url.searchParams.get('filter') ?? '';
  const parsed = parseFilter(source);
  if (!parsed.ok) {
    sendError(res, 400, 'bad-filter', parsed.error.message, { start: parsed.error.start, end: parsed.error.end });
    return true;
  }
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-');
  res.writeHead(200, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Disposition': `attachment; filename="hopscope-${stamp}.har"`,
    'Cache-Control': 'no-store',
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  const expr = parsed.expr;
  const abort = new AbortController();
  res.once('close', () => abort.abort());
  writeHar(db, res, { predicate: expr ? (exchange) => matchesFilter(expr, exchange, decodedBody) : undefined, signal: abort.signal }).then(
    () => res.end(),
    // The head is sent: all that is left is to cut the body short so the download shows as failed.
    () => res.destroy(),
  );
  return true;
}
