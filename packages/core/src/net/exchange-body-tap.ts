// Counts an active-path exchange's body bytes per side and hands the capture the first
// `bodyCaptureLimit` of them; the rest is only counted.
import type { Side } from '../capture/events.js';
import type { ProxyContext } from './proxy-context.js';

export class ExchangeBodyTap {
  requestSize = 0;
  responseSize = 0;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly exchangeId: number,
  ) {}

  onData(side: Side, chunk: Buffer): void {
    const before = side === 'client' ? this.requestSize : this.responseSize;
    if (side === 'client') this.requestSize += chunk.length;
    else this.responseSize += chunk.length;
    const room = this.ctx.config.bodyCaptureLimit - before;
    if (room <= 0 || !this.ctx.bus.hasListeners) return;
    this.ctx.bus.emit({
      kind: 'http.body',
      exchangeId: this.exchangeId,
      side,
      chunk: room >= chunk.length ? chunk : chunk.subarray(0, room),
    });
  }
}
