// Connection and exchange ids. A capture file may already hold rows from an earlier run, so the
// store seeds these counters with the highest ids it has.
export class IdAllocator {
  private conn: number;
  private exchange: number;

  constructor(lastConnId = 0, lastExchangeId = 0) {
    this.conn = lastConnId;
    this.exchange = lastExchangeId;
  }

  nextConnId(): number {
    return ++this.conn;
  }

  nextExchangeId(): number {
    return ++this.exchange;
  }
}
