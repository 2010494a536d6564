// The virtualized exchange list: an ARIA grid with a fixed row height, only the visible rows in
// the DOM, following the newest rows while the view is at the bottom, keyboard navigation.
import { useCallback, useLayoutEffect, useMemo, useRef, useState, useSyncExternalStore, type KeyboardEvent } from 'react';
import type { ExchangeStore } from '../store/exchange-store.js';
import type { SortKey, SortSpec } from '../store/sort.js';
import { useColumnWidths } from './column-widths.js';
import { fitColumns, gridTemplate, isResizable, widthOf } from './columns.js';
import { ColumnResizer } from './ColumnResizer.js';
import { ExchangeRowView } from './ExchangeRowView.js';
import { scrollToReveal, visibleWindow } from './virtual-window.js';

export const ROW_HEIGHT = 24;
const HEADER_HEIGHT = 28;

interface Props {
  store: ExchangeStore;
  selectedId: number | null;
  onSelect(id: number | null): void;
  sort: SortSpec;
  onSort(key: SortKey): void;
}

export function ExchangeList({ store, selectedId, onSelect, sort, onSort }: Props) {
  const version = useSyncExternalStore(store.subscribe.bind(store), () => store.version);
  const order = store.order;
  const scroller = useRef<HTMLDivElement>(null);
  const [viewport, setViewport] = useState({ scrollTop: 0, height: 600, width: 1000 });
  const following = useRef(true);

  useLayoutEffect(() => {
    const el = scroller.current!;
    const measure = () => setViewport((v) => ({ ...v, height: el.clientHeight, width: el.clientWidth }));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // New rows arrive at the bottom in the default order: stay there if the user was there.
  useLayoutEffect(() => {
    const el = scroller.current!;
    if (following.current && sort.key === 'id' && sort.dir === 'asc' && el.scrollHeight > el.clientHeight) {
      el.scrollTop = el.scrollHeight;
      setViewport((v) => (v.scrollTop === el.scrollTop ? v : { ...v, scrollTop: el.scrollTop }));
    }
  }, [version, sort]);

  const onScroll = () => {
    const el = scroller.current!;
    following.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT / 2;
    setViewport((v) => ({ ...v, scrollTop: el.scrollTop }));
  };

  const [widths, setWidth] = useColumnWidths();
  const columns = useMemo(() => fitColumns(viewport.width, widths), [viewport.width, widths]);
  const template = useMemo(() => gridTemplate(columns, widths), [columns, widths]);
  const rowsHeight = viewport.height - HEADER_HEIGHT;
  const win = visibleWindow({ itemCount: order.length, rowHeight: ROW_HEIGHT, scrollTop: viewport.scrollTop, height: rowsHeight });
  const select = useCallback((id: number) => onSelect(id), [onSelect]);
  // Time and # sort alike; the arrow goes on Time when it is shown.
  const arrowColumn =
    sort.key === 'id' ? (columns.some((c) => c.id === 'time') ? 'time' : 'id') : columns.find((c) => c.sortKey === sort.key)?.id;

  const moveTo = (index: number) => {
    if (order.length === 0) return;
    const i = Math.max(0, Math.min(order.length - 1, index));
    onSelect(order[i]);
    const el = scroller.current!;
    const top = scrollToReveal(i, ROW_HEIGHT, el.scrollTop, rowsHeight);
    if (top !== null) el.scrollTop = top;
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const current = selectedId === null ? -1 : order.indexOf(selectedId);
    const page = Math.max(1, Math.floor(rowsHeight / ROW_HEIGHT) - 1);
    const keys: Record<string, () => void> = {
      ArrowDown: () => moveTo(current + 1),
      ArrowUp: () => moveTo(current < 0 ? order.length - 1 : current - 1),
      PageDown: () => moveTo(current + page),
      PageUp: () => moveTo(current - page),
      Home: () => moveTo(0),
      End: () => moveTo(order.length - 1),
      Escape: () => onSelect(null),
    };
    const action = keys[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  };

  const rows = [];
  for (let i = win.start; i < win.end; i++) {
    const row = store.byId.get(order[i]);
    if (row) rows.push(<ExchangeRowView key={row.id} row={row} index={i} selected={row.id === selectedId} columns={columns} onSelect={select} />);
  }

  return (
    <div
      ref={scroller}
      className="exchange-list"
      role="grid"
      aria-label="Exchanges"
      aria-rowcount={order.length + 1}
      aria-activedescendant={selectedId !== null && store.byId.has(selectedId) ? `row-${selectedId}` : undefined}
      tabIndex={0}
      onScroll={onScroll}
      onKeyDown={onKeyDown}
      style={{ ['--cols' as string]: template }}
    >
      <div role="row" className="row header" aria-rowindex={1}>
        {columns.map((c) => {
          const active = c.id === arrowColumn;
          return (
            <div
              role="columnheader"
              key={c.id}
              className={`cell col-${c.id}${c.align === 'right' ? ' right' : ''}${c.sortKey ? ' sortable' : ''}`}
              aria-sort={active ? (sort.dir === 'asc' ? 'ascending' : 'descending') : undefined}
              onClick={c.sortKey ? () => onSort(c.sortKey!) : undefined}
            >
              {c.label}
              {active ? <span className="sort-arrow">{sort.dir === 'asc' ? '▲' : '▼'}</span> : null}
              {isResizable(c) ? <ColumnResizer label={c.label} width={widthOf(c, widths)} onResize={(px) => setWidth(c.id, px)} /> : null}
            </div>
          );
        })}
      </div>
      <div className="rows" style={{ height: order.length * ROW_HEIGHT }}>
        <div style={{ transform: `translateY(${win.padTop}px)` }}>{rows}</div>
      </div>
    </div>
  );
}
