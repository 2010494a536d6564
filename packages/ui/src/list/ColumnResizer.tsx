// The handle on a header cell's right edge: drag it (or focus it and press ←/→) to size the
// column, double-click it for the column's default width.
import type { KeyboardEvent, MouseEvent, PointerEvent } from 'react';
import { MAX_COLUMN_WIDTH, MIN_COLUMN_WIDTH } from './column-widths.js';

const KEY_STEP = 8;

interface Props {
  label: string;
  width: number;
  /** New width in pixels, or null for the default. */
  onResize(px: number | null): void;
}

export function ColumnResizer({ label, width, onResize }: Props) {
  const onPointerDown = (e: PointerEvent<HTMLSpanElement>) => {
    e.preventDefault(); // no text selection, no focus jump
    const handle = e.currentTarget;
    const startX = e.clientX;
    handle.setPointerCapture(e.pointerId);
    const move = (ev: globalThis.PointerEvent) => onResize(width + ev.clientX - startX);
    const end = () => {
      handle.removeEventListener('pointermove', move);
      handle.removeEventListener('pointerup', end);
      handle.removeEventListener('pointercancel', end);
    };
    handle.addEventListener('pointermove', move);
    handle.addEventListener('pointerup', end);
    handle.addEventListener('pointercancel', end);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLSpanElement>) => {
    const step = e.key === 'ArrowRight' ? KEY_STEP : e.key === 'ArrowLeft' ? -KEY_STEP : 0;
    if (step === 0) return;
    e.preventDefault();
    e.stopPropagation(); // the list's own arrow keys move the selection
    onResize(width + step);
  };
  const stop = (e: MouseEvent) => e.stopPropagation(); // a click here is not a sort
  return (
    <span
      className="col-resize"
      role="separator"
      aria-orientation="vertical"
      aria-label={`Resize the ${label || 'error'} column`}
      aria-valuenow={width}
      aria-valuemin={MIN_COLUMN_WIDTH}
      aria-valuemax={MAX_COLUMN_WIDTH}
      tabIndex={0}
      onPointerDown={onPointerDown}
      onKeyDown={onKeyDown}
      onClick={stop}
      onDoubleClick={(e) => {
        stop(e);
        onResize(null);
      }}
    />
  );
}
