// Column widths the user dragged, kept across reloads (localStorage). A width set here overrides
// the column's default; the path column is never sized: it takes what the others leave.
import { useCallback, useState } from 'react';

const STORAGE_KEY = 'hopscope.columnWidths';
export const MIN_COLUMN_WIDTH = 32;
export const MAX_COLUMN_WIDTH = 800;

export type ColumnWidths = Readonly<Record<string, number>>;

function load(): ColumnWidths {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}');
    if (!parsed || typeof parsed !== 'object') return {};
    return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'number' && v >= MIN_COLUMN_WIDTH && v <= MAX_COLUMN_WIDTH));
  } catch {
    return {}; // storage blocked or garbled: defaults
  }
}

function save(widths: ColumnWidths): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(widths));
  } catch {
    // storage blocked: the widths last for this page only
  }
}

export function clampWidth(px: number): number {
  return Math.round(Math.min(MAX_COLUMN_WIDTH, Math.max(MIN_COLUMN_WIDTH, px)));
}

/** The widths, a setter (null: back to the default) and nothing else. */
export function useColumnWidths(): [ColumnWidths, (id: string, px: number | null) => void] {
  const [widths, setWidths] = useState<ColumnWidths>(load);
  const setWidth = useCallback((id: string, px: number | null) => {
    setWidths((current) => {
      const next = { ...current };
      if (px === null) delete next[id];
      else next[id] = clampWidth(px);
      save(next);
      return next;
    });
  }, []);
  return [widths, setWidth];
}
