import { memo } from 'react';
import type { ExchangeRow } from '../../../core/src/inspector/protocol.js';
import type { Column } from './columns.js';

interface Props {
  row: ExchangeRow;
  index: number;
  selected: boolean;
  columns: Column[];
  onSelect(id: number): void;
}

/** One list row; re-renders only when its row object, selection or columns change. */
export const ExchangeRowView = memo(function ExchangeRowView({ row, index, selected, columns, onSelect }: Props) {
  const classes = ['row', index % 2 ? 'odd' : 'even'];
  if (selected) classes.push('selected');
  if (row.state === 'failed' || row.tlsError) classes.push('failed');
  if (row.state === 'pending' || row.state === 'responded') classes.push('in-flight');
  return (
    <div
      role="row"
      id={`row-${row.id}`}
      aria-rowindex={index + 2}
      aria-selected={selected}
      className={classes.join(' ')}
      data-id={row.id}
      onMouseDown={() => onSelect(row.id)}
    >
      {columns.map((c) => (
        <div role="gridcell" key={c.id} className={`cell col-${c.id}${c.align === 'right' ? ' right' : ''}`} title={c.title?.(row)}>
          {c.render(row)}
        </div>
      ))}
    </div>
  );
});
