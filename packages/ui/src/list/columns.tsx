// The exchange list's columns: what each shows, how wide it is, and which go first when space is short.
import type { ReactNode } from 'react';
import type { ExchangeRow } from '../../../core/src/inspector/protocol.js';
import { alpnLabel, durationOf, errorNote, formatBytes, formatClock, formatMs, pathOf, protocolLabel, statusClass } from '../format.js';
import type { SortKey } from '../store/sort.js';
import type { ColumnWidths } from './column-widths.js';

export interface Column {
  id: string;
  label: string;
  /** Default width in pixels (the user may drag it); the path column takes what is left. */
  width: number;
  /** Lower shows first; columns are dropped from the highest when the list is narrow. */
  priority: number;
  sortKey?: SortKey;
  align?: 'right';
  render(row: ExchangeRow): ReactNode;
  title?(row: ExchangeRow): string | undefined;
}

export const PATH_MIN_WIDTH = 180;

export const COLUMNS: Column[] = [
  {
    id: 'error', label: '', width: 22, priority: 0,
    render: (r) => (errorNote(r) ? <span className="err-mark" aria-label="error">!</span> : null),
    title: (r) => errorNote(r) ?? undefined,
  },
  { id: 'id', label: '#', width: 56, priority: 6, sortKey: 'id', align: 'right', render: (r) => r.id },
  { id: 'time', label: 'Time', width: 104, priority: 4, sortKey: 'id', render: (r) => formatClock(r.startedAt) },
  { id: 'method', label: 'Method', width: 74, priority: 1, sortKey: 'method', render: (r) => <span className="method">{r.method}</span> },
  {
    id: 'status', label: 'Status', width: 58, priority: 1, sortKey: 'status',
    render: (r) => <span className={`status status-${statusClass(r)}`}>{r.status ?? (r.state === 'failed' ? 'failed' : '…')}</span>,
    title: (r) => r.statusText ?? r.errorReason ?? r.state,
  },
  { id: 'host', label: 'Host', width: 170, priority: 2, sortKey: 'host', render: (r) => r.host, title: (r) => `${r.host}:${r.port}` },
  { id: 'path', label: 'Path', width: 0, priority: 0, sortKey: 'path', render: (r) => pathOf(r), title: (r) => r.url },
  { id: 'protocol', label: 'Protocol', width: 96, priority: 3, sortKey: 'protocol', render: (r) => protocolLabel(r) },
  { id: 'alpn', label: 'ALPN', width: 76, priority: 5, sortKey: 'alpn', render: (r) => alpnLabel(r), title: () => 'negotiated ALPN: client leg | upstream leg' },
  { id: 'size', label: 'Size', width: 72, priority: 3, sortKey: 'size', align: 'right', render: (r) => formatBytes(r.responseBodySize) },
  { id: 'duration', label: 'Duration', width: 84, priority: 2, sortKey: 'duration', align: 'right', render: (r) => formatMs(durationOf(r)) },
];

/** A column's width: the one the user chose, else its default. */
export function widthOf(c: Column, widths: ColumnWidths): number {
  return widths[c.id] ?? c.width;
}

/** The path column is sized by what is left; the error mark is a fixed glyph. */
export function isResizable(c: Column): boolean {
  return c.id !== 'path' && c.id !== 'error';
}

/** The columns that fit in `width`, in display order. */
export function fitColumns(width: number, widths: ColumnWidths = {}): Column[] {
  const byPriority = [...COLUMNS].sort((a, b) => a.priority - b.priority);
  const chosen = new Set<Column>();
  let used = PATH_MIN_WIDTH;
  for (const c of byPriority) {
    if (c.id === 'path') {
      chosen.add(c);
      continue;
    }
    if (used + widthOf(c, widths) > width && chosen.size > 3) continue;
    chosen.add(c);
    used += widthOf(c, widths);
  }
  return COLUMNS.filter((c) => chosen.has(c));
}

export function gridTemplate(columns: Column[], widths: ColumnWidths = {}): string {
  return columns.map((c) => (c.id === 'path' ? `minmax(${PATH_MIN_WIDTH}px, 1fr)` : `${widthOf(c, widths)}px`)).join(' ');
}
