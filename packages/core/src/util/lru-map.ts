// A bounded map that forgets the least recently used entry first. Map keeps insertion order, so
// a read that hits re-inserts the entry at the most recent end and eviction takes the first key.
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The value, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  /** Stores the value as the most recently used; returns how many old entries were evicted. */
  set(key: K, value: V): number {
    this.map.delete(key);
    this.map.set(key, value);
    let evicted = 0;
    while (this.map.size > this.max) {
      this.map.delete(this.map.keys().next().value as K);
      evicted++;
    }
    return evicted;
  }

  delete(key: K): void {
    this.map.delete(key);
  }
}
