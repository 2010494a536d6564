// Translates a parsed filter to a SQLite boolean expression over the capture schema
// (docs/schema.md), with the exchanges table aliased as `e`. Values are always bound, never
// spliced. Every leaf is wrapped so it is 0 rather than NULL, which keeps NOT and OR two-valued
// and identical to evaluate.ts.
import type { FilterExpr, FilterLeaf, MessageSide, NumberTest } from './ast.js';

/**
 * `body:` searches bodies with their content coding undone: SQL calls this function, which the
 * store registers on each connection it opens (store/decoded-body.ts), only for bodies whose
 * headers name a coding.
 */
export const DECODED_BODY_SQL_FUNCTION = 'hopscope_decoded_body';

export interface SqlFragment {
  sql: string;
  params: Array<string | number>;
}

const headerName = `lower(json_extract(h.value, '$[0]'))`;
const headerValue = `lower(json_extract(h.value, '$[1]'))`;

const headerExists = (column: string, cond: string) => `EXISTS (SELECT 1 FROM json_each(${column}) h WHERE ${cond})`;

/** SQL twin of `isWebSocketRequest` (evaluate.ts). */
export const WEBSOCKET_SQL =
  `(CASE WHEN e.protocol IN ('h2', 'h2c') ` +
  `THEN e.method = 'CONNECT' AND ${headerExists('e.request_headers', `${headerName} = 'sec-websocket-version'`)} ` +
  `ELSE ${headerExists('e.request_headers', `${headerName} = 'upgrade' AND instr(${headerValue}, 'websocket') > 0`)} END)`;

/** `{ sql: '1', params: [] }` for an empty filter. */
export function filterToSql(expr: FilterExpr | null): SqlFragment {
  const params: Array<string | number> = [];
  const sql = expr ? build(expr, params) : '1';
  return { sql, params };
}

function build(expr: FilterExpr, params: Array<string | number>): string {
  switch (expr.type) {
    case 'and':
      return `(${build(expr.left, params)} AND ${build(expr.right, params)})`;
    case 'or':
      return `(${build(expr.left, params)} OR ${build(expr.right, params)})`;
    case 'not':
      return `(NOT ${build(expr.expr, params)})`;
    default:
      return `ifnull(${leaf(expr, params)}, 0)`;
  }
}

function numberTest(column: string, test: NumberTest, params: Array<string | number>): string {
  if (test.op === 'range') {
    params.push(test.min, test.max);
    return `${column} BETWEEN ? AND ?`;
  }
  params.push(test.value);
  return `${column} ${{ eq: '=', lt: '<', le: '<=', gt: '>', ge: '>=' }[test.op]} ?`;
}

const sideColumns = (side: MessageSide, request: string, response: string) =>
  side === 'any' ? [request, response] : side === 'request' ? [request] : [response];

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function leaf(l: FilterLeaf, params: Array<string | number>): string {
  switch (l.type) {
    case 'url':
      params.push(l.text);
      return `instr(lower(e.url), ?) > 0`;
    case 'host':
      params.push(l.pattern.split('*').map(likeEscape).join('%'));
      return `e.host LIKE ? ESCAPE '\\'`;
    case 'method':
      params.push(l.method);
      return `upper(e.method) = ?`;
    case 'status':
      return numberTest('e.status', l.test, params);
    case 'protocol': {
      params.push(...l.protocols);
      const inList = `e.protocol IN (${l.protocols.map(() => '?').join(', ')})`;
      return l.websocket ? `(${inList} AND ${WEBSOCKET_SQL})` : inList;
    }
    case 'scheme':
      params.push(l.scheme);
      return `e.scheme = ?`;
    case 'has':
      switch (l.what) {
        case 'websocket':
          return WEBSOCKET_SQL;
        case 'error':
          return `e.error_reason IS NOT NULL`;
        case 'response':
          return `e.status IS NOT NULL`;
        case 'request-body':
          return `ifnull(e.request_body_size, 0) > 0`;
        case 'response-body':
          return `ifnull(e.response_body_size, 0) > 0`;
      }
      throw new Error(`unknown has: ${String(l.what)}`);
    case 'state':
      params.push(l.state);
      return `e.state = ?`;
    case 'error':
      params.push(l.reason);
      return `e.error_reason = ?`;
    case 'header': {
      const conds = sideColumns(l.side, 'e.request_headers', 'e.response_headers').map((column) => {
        params.push(l.name);
        if (l.value === null) return headerExists(column, `${headerName} = ?`);
        params.push(l.value);
        return headerExists(column, `${headerName} = ? AND instr(${headerValue}, ?) > 0`);
      });
      return `(${conds.join(' OR ')})`;
    }
    case 'body': {
      const sideValues = l.side === 'any' ? `('request', 'response')` : l.side === 'request' ? `('request')` : `('response')`;
      params.push(l.text);
      // Decoded only when the headers name a content coding: most bodies are searched as stored, in SQLite.
      const headers = `(CASE b.side WHEN 'request' THEN e.request_headers ELSE e.response_headers END)`;
      const data = `(CASE WHEN instr(lower(${headers}), '"content-encoding"') > 0 THEN ${DECODED_BODY_SQL_FUNCTION}(b.data, ${headers}) ELSE b.data END)`;
      return `EXISTS (SELECT 1 FROM bodies b WHERE b.exchange_id = e.id AND b.side IN ${sideValues} AND instr(lower(${data}), ?) > 0)`;
    }
    case 'type':
      params.push(l.text);
      return `instr(lower(e.response_content_type), ?) > 0`;
    case 'size':
      return numberTest(l.side === 'request' ? 'e.request_body_size' : 'e.response_body_size', l.test, params);
    case 'duration':
      return numberTest('(e.completed_at - e.started_at)', l.test, params);
    case 'conn':
      params.push(l.id);
      return `e.connection_id = ?`;
  }
}
