// The "Copy as curl" button of the detail pane. Where the clipboard is refused (an insecure
// origin, a denied permission), the command is shown to be copied by hand.
import { useEffect, useState } from 'react';
import type { ExchangeDetailJson } from '../../../core/src/inspector/protocol.js';
import { curlCommand } from './curl-command.js';

export function CopyAsCurl({ exchange }: { exchange: ExchangeDetailJson }) {
  const [outcome, setOutcome] = useState<'idle' | 'copied' | 'shown'>('idle');
  useEffect(() => setOutcome('idle'), [exchange.id]);
  useEffect(() => {
    if (outcome !== 'copied') return;
    const timer = setTimeout(() => setOutcome('idle'), 1500);
    return () => clearTimeout(timer);
  }, [outcome]);
  const { command, bodyLeftOut } = curlCommand(exchange);
  const copy = () =>
    navigator.clipboard.writeText(command).then(
      () => setOutcome('copied'),
      () => setOutcome('shown'),
    );
  return (
    <>
      <button className="copy-curl" onClick={copy} title={bodyLeftOut ? 'The request body cannot be included (binary, truncated or large)' : 'Copy the request as a curl command'}>
        {outcome === 'copied' ? 'Copied ✓' : 'Copy as curl'}
      </button>
      {outcome === 'shown' ? (
        <div className="curl-fallback" role="dialog" aria-label="curl command">
          <p className="muted small">The clipboard is not available here: copy the command below.</p>
          <pre className="mono">{command}</pre>
          <button onClick={() => setOutcome('idle')}>Close</button>
        </div>
      ) : null}
    </>
  );
}
