// The filter expression language (docs/filter.md), shared by the inspector API, the UI and the
// exporters. Pure TypeScript without Node imports: the UI bundles it as is.
export { FilterSyntaxError, asciiLower, needsDetail, type FilterExpr, type FilterLeaf, type NumberTest } from './ast.js';
export { parseFilter, parseFilterOrThrow, formatFilter, type ParseResult } from './parser.js';
export { matchesFilter, isWebSocketRequest, FilterNeedsDetailError, type BodyDecoder, type FilterSubject } from './evaluate.js';
export { filterToSql, DECODED_BODY_SQL_FUNCTION, WEBSOCKET_SQL, type SqlFragment } from './to-sql.js';
export { FIELD_NAMES } from './fields.js';
