// What to do next when nothing is captured yet: the proxy address and the CA to trust.
import type { InfoResponse } from '../../core/src/inspector/protocol.js';

export function EmptyState({ info, filter, paused }: { info: InfoResponse | null; filter: string; paused: boolean }) {
  if (filter) {
    return (
      <div className="empty">
        <h2>No exchanges match this filter</h2>
        <p>
          <code>{filter}</code> matches nothing captured so far. New traffic that matches appears here as it arrives.
        </p>
      </div>
    );
  }
  const proxy = info?.proxyUrl ?? 'http://127.0.0.1:8080';
  return (
    <div className="empty">
      <h2>{paused ? 'Live updates are paused' : 'Waiting for traffic'}</h2>
      <p>Send requests through the proxy and they appear here as they happen.</p>
      <dl className="setup">
        <dt>Proxy</dt>
        <dd>
          <code className="copyable">{proxy}</code>
        </dd>
        <dt>Try it</dt>
        <dd>
          <code className="copyable block">curl -x {proxy} http://example.com/</code>
        </dd>
        <dt>Any program</dt>
        <dd>
          <code className="copyable block">
            export HTTP_PROXY={proxy} HTTPS_PROXY={proxy}
          </code>
        </dd>
        {info?.caPath ? (
          <>
            <dt>CA certificate</dt>
            <dd>
              <code className="copyable">{info.caPath}</code>
              <div className="muted small">Clients must trust it to see HTTPS; <code>hopscope ca</code> explains how for browsers and systems.</div>
            </dd>
            <dt>HTTPS</dt>
            <dd>
              <code className="copyable block">
                curl -x {proxy} --cacert {info.caPath} https://example.com/
              </code>
            </dd>
          </>
        ) : null}
      </dl>
    </div>
  );
}
