// Which rows of a fixed-row-height list are on screen. Pure, so it is tested without a DOM.

export interface WindowInput {
  itemCount: number;
  rowHeight: number;
  scrollTop: number;
  /** Visible height of the scrolling area. */
  height: number;
  /** Extra rows rendered above and below, so fast scrolling shows no gaps. */
  overscan?: number;
}

export interface WindowRange {
  /** First rendered index (inclusive). */
  start: number;
  /** Last rendered index (exclusive). */
  end: number;
  /** Space above and below the rendered rows, in pixels. */
  padTop: number;
  padBottom: number;
}

export function visibleWindow({ itemCount, rowHeight, scrollTop, height, overscan = 8 }: WindowInput): WindowRange {
  if (itemCount <= 0 || rowHeight <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const maxScroll = Math.max(0, itemCount * rowHeight - height);
  const top = Math.min(Math.max(0, scrollTop), maxScroll);
  const first = Math.floor(top / rowHeight);
  const visible = Math.ceil((top + Math.max(0, height)) / rowHeight) - first;
  const start = Math.max(0, first - overscan);
  const end = Math.min(itemCount, first + visible + overscan);
  return { start, end, padTop: start * rowHeight, padBottom: (itemCount - end) * rowHeight };
}

/** The scrollTop that brings row `index` into view, or null when it already is. */
export function scrollToReveal(index: number, rowHeight: number, scrollTop: number, height: number): number | null {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + height) return top + rowHeight - height;
  return null;
}
