// The filter input: parsed on every keystroke with the same parser the server uses, so a mistake
// is explained at once (and where it is) instead of showing an empty list. Valid filters apply
// after a short pause, or at once on Enter.
import { useEffect, useId, useMemo, useState } from 'react';
import { parseFilter } from '../../../core/src/filter/index.js';

interface Props {
  applied: string;
  onApply(filter: string): void;
  serverError: { message: string; start?: number; end?: number } | null;
}

const EXAMPLES: Array<[string, string]> = [
  ['api/users', 'URL contains text'],
  ['host:*.example.com', 'host name, * wildcard'],
  ['method:POST', 'request method'],
  ['status:4xx  status:>=500  status:200-299', 'status code, class, comparison, range'],
  ['protocol:h2  protocol:http1  protocol:ws', 'protocol (ws = WebSocket)'],
  ['has:websocket  has:error  has:response-body', 'flags'],
  ['header:content-type=json  reqheader:authorization', 'header present or containing text'],
  ['body:token  resbody:"error code"', 'stored body contains text'],
  ['type:image  size:>100kb  duration:>1s', 'content type, response size, time taken'],
  ['not host:cdn.test and (status:5xx or has:error)', 'combine with and, or, not, -, ( )'],
];

export function FilterBox({ applied, onApply, serverError }: Props) {
  const [text, setText] = useState(applied);
  const parsed = useMemo(() => parseFilter(text), [text]);
  const errorId = useId();

  useEffect(() => {
    if (!parsed.ok || text === applied) return;
    const timer = setTimeout(() => onApply(text), 300);
    return () => clearTimeout(timer);
  }, [text, parsed, applied, onApply]);

  const error = !parsed.ok ? parsed.error : text === applied ? serverError : null;
  const start = error?.start ?? 0;
  const end = Math.max(error?.end ?? text.length, start);

  return (
    <div className="filter">
      <div className={`filter-field${error ? ' invalid' : ''}`}>
        <span className="filter-icon" aria-hidden>⌕</span>
        <input
          type="search"
          aria-label="Filter exchanges"
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errorId : undefined}
          placeholder="Filter: host:api.test status:4xx method:POST …"
          spellCheck={false}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && parsed.ok) onApply(text);
            if (e.key === 'Escape') {
              setText('');
              onApply('');
            }
          }}
        />
        <details className="filter-help">
          <summary aria-label="Filter syntax">?</summary>
          <div className="filter-help-body">
            <table>
              <tbody>
                {EXAMPLES.map(([example, what]) => (
                  <tr key={example}>
                    <td>
                      <code>{example}</code>
                    </td>
                    <td>{what}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      </div>
      {error ? (
        <div className="filter-error" id={errorId} role="alert">
          <code className="filter-error-source">
            {text.slice(0, start)}
            <mark>{text.slice(start, end) || ' '}</mark>
            {text.slice(end)}
          </code>
          <span>{error.message}</span>
        </div>
      ) : null}
    </div>
  );
}
