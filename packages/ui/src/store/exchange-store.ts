// The exchange list's model: rows by id plus the ids in display order, updated incrementally.
// Messages are queued as they arrive and applied together by flush(), once per animation frame,
// so React renders at most once per frame however fast traffic comes. Rows carry the sequence
// number that last changed them; an update older than what is held is dropped.
import type { ExchangeRow } from '../../../core/src/inspector/protocol.js';
import { comparator, DEFAULT_SORT, keyChanged, lowerBound, type Comparator, type SortSpec } from './sort.js';

export type StoreInput =
  | { kind: 'reset'; seq: number; rows: ExchangeRow[] }
  | { kind: 'upsert'; seq?: number; rows: ExchangeRow[]; removed?: number[] };

/** Beyond this share of the list changing in one flush, re-sorting is cheaper than splicing. */
const REBUILD_RATIO = 0.125;

export class ExchangeStore {
  byId = new Map<number, ExchangeRow>();
  /** Ids in display order. Replaced (never mutated) on change, so React can compare it. */
  order: number[] = [];
  sort: SortSpec = DEFAULT_SORT;
  /** Watermark: every capture event up to here is reflected (as far as the server sent it). */
  seq = 0;
  /** Rows with ids up to here were cleared from the view and stay hidden. */
  clearedThrough = 0;
  /** Bumped on every change; the React binding subscribes to it. */
  version = 0;

  private pending: StoreInput[] = [];
  private cmp: Comparator = comparator(DEFAULT_SORT);
  private listeners = new Set<() => void>();

  get size(): number {
    return this.order.length;
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  enqueue(input: StoreInput): void {
    this.pending.push(input);
  }

  /** Applies everything queued; notifies once. Returns whether anything changed. */
  flush(): boolean {
    if (this.pending.length === 0) return false;
    const inputs = this.pending;
    this.pending = [];
    let order = this.order;
    let changed = false;
    for (const input of inputs) {
      if (input.kind === 'reset') {
        this.byId = new Map();
        order = [];
        this.seq = input.seq;
        changed = true;
      }
      const result = this.apply(order, input.rows, input.kind === 'upsert' ? (input.removed ?? []) : []);
      order = result.order;
      changed ||= result.changed;
      if (input.seq !== undefined && input.seq > this.seq) this.seq = input.seq;
    }
    if (changed) {
      this.order = order;
      this.bump();
    }
    return changed;
  }

  private apply(order: number[], rows: ExchangeRow[], removed: number[]): { order: number[]; changed: boolean } {
    const removedSet = new Set(removed);
    const fresh = new Map<number, ExchangeRow>();
    /** Rows whose sort key changed, by id, with the values they were placed with in `order`. */
    const movedOld = new Map<number, ExchangeRow>();
    const gone: ExchangeRow[] = [];
    let updated = false;
    for (const row of rows) {
      if (row.id <= this.clearedThrough || removedSet.has(row.id)) continue;
      const old = this.byId.get(row.id);
      if (old && old.lastSeq > row.lastSeq) continue;
      // The same id may come twice in one batch: only its first placed value matters.
      if (!old || fresh.has(row.id)) fresh.set(row.id, row);
      else if (!movedOld.has(row.id) && keyChanged(this.sort, old, row)) movedOld.set(row.id, old);
      this.byId.set(row.id, row);
      updated = true;
    }
    for (const id of removedSet) {
      const old = this.byId.get(id);
      if (old) gone.push(old);
    }
    const touched = fresh.size + movedOld.size + gone.length;
    if (touched === 0) return { order, changed: updated };
    for (const old of gone) this.byId.delete(old.id);
    if (touched > Math.max(64, order.length * REBUILD_RATIO)) {
      return { order: [...this.byId.keys()].sort((a, b) => this.cmp(this.byId.get(a)!, this.byId.get(b)!)), changed: true };
    }
    const next = order.slice();
    // Find rows that leave or move by the values they were placed with.
    const goneById = new Map(gone.map((g) => [g.id, g]));
    const placedAs = (id: number) => movedOld.get(id) ?? goneById.get(id) ?? this.byId.get(id)!;
    for (const old of [...gone, ...movedOld.values()]) {
      let lo = 0;
      let hi = next.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.cmp(placedAs(next[mid]), old) < 0) lo = mid + 1;
        else hi = mid;
      }
      if (next[lo] === old.id) next.splice(lo, 1);
    }
    for (const id of [...fresh.keys(), ...movedOld.keys()]) {
      const row = this.byId.get(id)!;
      const at = lowerBound(next, this.byId, row, this.cmp);
      if (at === next.length) next.push(row.id);
      else next.splice(at, 0, row.id);
    }
    return { order: next, changed: true };
  }

  /** Hides every row held now (and any later update to them). */
  clear(): void {
    let max = this.clearedThrough;
    for (const id of this.byId.keys()) if (id > max) max = id;
    this.clearedThrough = max;
    this.byId = new Map();
    this.order = [];
    this.pending = [];
    this.bump();
  }

  setSort(sort: SortSpec): void {
    this.sort = sort;
    this.cmp = comparator(sort);
    this.order = [...this.byId.keys()].sort((a, b) => this.cmp(this.byId.get(a)!, this.byId.get(b)!));
    this.bump();
  }

  /** Smallest id held, for paging older rows. */
  minId(): number | null {
    let min: number | null = null;
    for (const id of this.byId.keys()) if (min === null || id < min) min = id;
    return min;
  }

  private bump(): void {
    this.version++;
    for (const l of this.listeners) l();
  }
}
