// Prepared statements cached per database by SQL text, for the readers (queries, the inspector):
// each statement shape is prepared once per connection.
import type Database from 'better-sqlite3';

const cache = new WeakMap<Database.Database, Map<string, Database.Statement>>();

export function prepared(db: Database.Database, sql: string): Database.Statement {
  let byText = cache.get(db);
  if (!byText) cache.set(db, (byText = new Map()));
  let stmt = byText.get(sql);
  if (!stmt) {
    // Filters produce many shapes; keep the cache from growing without bound.
    if (byText.size > 200) byText.clear();
    byText.set(sql, (stmt = db.prepare(sql)));
  }
  return stmt;
}
