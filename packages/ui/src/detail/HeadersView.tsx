// Headers exactly as sent: in wire order with case and duplicates kept, as a table or as raw text
// behind the start line.
import { useState } from 'react';

interface Props {
  startLine: string;
  headers: Array<[string, string]> | null;
  trailers?: Array<[string, string]> | null;
  /** HTTP/2 carries no header text on the wire: the raw view is a rendering, and says so. */
  binaryFraming?: boolean;
}

export function HeadersView({ startLine, headers, trailers, binaryFraming }: Props) {
  const [raw, setRaw] = useState(false);
  const list = headers ?? [];
  return (
    <section className="headers">
      <div className="section-bar">
        <h3>Headers <span className="count">{list.length}</span></h3>
        <div className="segmented" role="tablist" aria-label="Header view">
          <button role="tab" aria-selected={!raw} className={!raw ? 'on' : ''} onClick={() => setRaw(false)}>
            Parsed
          </button>
          <button role="tab" aria-selected={raw} className={raw ? 'on' : ''} onClick={() => setRaw(true)}>
            Raw
          </button>
        </div>
      </div>
      {raw ? (
        <>
          {binaryFraming ? <p className="muted small">HTTP/2 sends headers as binary HPACK; shown here as text in wire order.</p> : null}
          <pre className="code raw-headers">
            {[startLine, ...list.map(([n, v]) => `${n}: ${v}`)].join('\n')}
            {trailers?.length ? `\n\n${trailers.map(([n, v]) => `${n}: ${v}`).join('\n')}` : ''}
          </pre>
        </>
      ) : (
        <table className="kv headers-table">
          <tbody>
            {list.map(([name, value], i) => (
              <tr key={i}>
                <th scope="row">{name}</th>
                <td>{value}</td>
              </tr>
            ))}
            {trailers?.length ? (
              <tr className="subhead">
                <th colSpan={2}>Trailers</th>
              </tr>
            ) : null}
            {(trailers ?? []).map(([name, value], i) => (
              <tr key={`t${i}`}>
                <th scope="row">{name}</th>
                <td>{value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.length === 0 ? <p className="muted">No headers.</p> : null}
    </section>
  );
}
