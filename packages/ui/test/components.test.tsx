// Components rendered to markup (no DOM needed): what people read must be there, in order.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renderToStaticMarkup } from 'react-dom/server';
import type { ExchangeDetailJson, ExchangeRow } from '../../core/src/inspector/protocol.js';
import { EmptyState } from '../src/EmptyState.js';
import { FilterBox } from '../src/filter/FilterBox.js';
import { HeadersView } from '../src/detail/HeadersView.js';
import { timingPhases } from '../src/detail/TimingTab.js';
import { TlsLeg, validityProblem } from '../src/detail/ConnectionTab.js';
import { ExchangeRowView } from '../src/list/ExchangeRowView.js';
import { COLUMNS, fitColumns } from '../src/list/columns.js';
import { alpnLabel, formatBytes, pathOf, protocolLabel } from '../src/format.js';

const row: ExchangeRow = {
  id: 7, connectionId: 2, streamId: 1, protocol: 'h2', method: 'POST', url: 'https://api.test/v1/items?x=1', host: 'api.test',
  status: 503, statusText: '', responseContentType: 'application/json', state: 'failed', startedAt: Date.UTC(2026, 0, 1, 12, 0, 0),
  completedAt: Date.UTC(2026, 0, 1, 12, 0, 1, 250), requestBodySize: 10, responseBodySize: 2048, errorReason: 'reset', lastSeq: 9,
  target: '/v1/items?x=1', scheme: 'https', port: 443, responseProtocol: 'h2', responseStartAt: null, websocket: false,
  clientAlpn: 'h2', upstreamAlpn: 'h2', tlsError: false,
};

const text = (html: string) => html.replace(/<[^>]+>/g, '|').replace(/\|+/g, '|');

describe('components', { timeout: 10_000 }, () => {
  test('a list row shows every column, the error marker and its state', () => {
    const html = renderToStaticMarkup(<ExchangeRowView row={row} index={3} selected columns={COLUMNS} onSelect={() => {}} />);
    assert.match(html, /role="row"/);
    assert.match(html, /aria-selected="true"/);
    assert.match(html, /class="row odd selected failed"/);
    assert.match(text(html), /\|!\|7\|\d\d:00:00\.000\|POST\|503\|api\.test\|\/v1\/items\?x=1\|h2\|h2\|2\.0 kB\|1\.25 s\|/);
    assert.match(html, /title="failed: reset"/);
  });

  test('narrow lists drop the least important columns first, never the path', () => {
    const wide = fitColumns(2000).map((c) => c.id);
    assert.deepEqual(wide, COLUMNS.map((c) => c.id));
    const narrow = fitColumns(640).map((c) => c.id);
    assert.ok(narrow.includes('path') && narrow.includes('status') && narrow.includes('method'));
    assert.ok(!narrow.includes('id') && !narrow.includes('alpn'));
  });

  test('headers keep wire order, case and duplicates; raw view has the start line', () => {
    const headers: Array<[string, string]> = [['Host', 'a.test'], ['set-cookie', 'a=1'], ['X-B', '2'], ['set-cookie', 'b=2']];
    const html = renderToStaticMarkup(<HeadersView startLine="GET / HTTP/1.1" headers={headers} />);
    assert.match(text(html), /Host\|a\.test\|set-cookie\|a=1\|X-B\|2\|set-cookie\|b=2/);
    assert.match(html, /Headers <span class="count">4<\/span>/);
  });

  test('the empty state gives the proxy address and the CA path', () => {
    const info = { name: 'hopscope' as const, liveProtocol: 1, proxyUrl: 'http://127.0.0.1:8080', caPath: '/home/u/.hopscope/ca.pem', seq: 0,
      capabilities: { h2Frames: false, wsMessages: false }, replay: true };
    const html = renderToStaticMarkup(<EmptyState info={info} filter="" paused={false} />);
    assert.match(html, /Waiting for traffic/);
    assert.match(html, /curl -x http:\/\/127\.0\.0\.1:8080 http:\/\/example\.com\//);
    assert.match(html, /--cacert \/home\/u\/\.hopscope\/ca\.pem/);
    assert.match(renderToStaticMarkup(<EmptyState info={info} filter="status:5xx" paused={false} />), /No exchanges match this filter/);
  });

  test('an invalid filter is explained with the offending text marked', () => {
    const html = renderToStaticMarkup(<FilterBox applied="host:a stauts:500" onApply={() => {}} serverError={null} />);
    assert.match(html, /role="alert"/);
    assert.match(html, /host:a <mark>stauts<\/mark>:500/);
    assert.match(html, /Unknown field &quot;stauts&quot;\. Did you mean &quot;status&quot;\?/);
    assert.match(html, /aria-invalid="true"/);
    assert.doesNotMatch(renderToStaticMarkup(<FilterBox applied="status:500" onApply={() => {}} serverError={null} />), /role="alert"/);
  });

  test('timing phases follow the exchange timeline', () => {
    const e = { dnsMs: 2, connectMs: 3, tlsMs: null, startedAt: 100, requestEndAt: 101, responseStartAt: 140, completedAt: 150 } as ExchangeDetailJson;
    assert.deepEqual(timingPhases(e).map((p) => [p.label, p.ms]), [
      ['DNS lookup', 2], ['Connect', 3], ['Sending request', 1], ['Waiting (first byte)', 39], ['Receiving response', 10],
    ]);
  });

  test('a TLS leg that failed shows why and the certificate refused, marked expired as of the connection', () => {
    const cert = { subject: 'CN=old.test', issuer: 'CN=Test CA', sans: ['DNS:old.test'], validFrom: '2024-01-01T00:00:00.000Z', validTo: '2025-01-01T00:00:00.000Z', fingerprint256: 'AB:CD', serialNumber: '01' };
    const leg = { sni: 'old.test', alpnOffered: ['h2'], alpn: null, version: null, cipher: null, handshakeMs: null, certificates: [cert],
      error: { reason: 'upstream-cert' as const, message: 'certificate has expired', code: 'CERT_HAS_EXPIRED' } };
    const html = text(renderToStaticMarkup(<TlsLeg title="hopscope ↔ upstream" leg={leg} explanation="Use --upstream-ca" at={Date.parse('2026-01-01T00:00:00Z')} />));
    assert.match(html, /upstream-cert\|: certificate has expired\|Use --upstream-ca\|/);
    assert.match(html, /Subject\|CN=old\.test\|.*Valid\|2024-01-01T00:00:00\.000Z – 2025-01-01T00:00:00\.000Z\|expired\|/);
    assert.equal(validityProblem(cert, Date.parse('2024-06-01T00:00:00Z')), null, 'valid then');
    assert.equal(validityProblem(cert, Date.parse('2023-06-01T00:00:00Z')), 'not yet valid');
  });

  test('labels: protocol per leg, ALPN per leg, path from the URL, sizes', () => {
    assert.equal(protocolLabel({ ...row, responseProtocol: 'HTTP/1.1' }), 'h2 → HTTP/1.1');
    assert.equal(protocolLabel({ ...row, websocket: true }), 'ws over h2');
    assert.equal(protocolLabel({ ...row, protocol: 'HTTP/1.1', responseProtocol: 'HTTP/1.1', websocket: true }), 'ws');
    assert.equal(alpnLabel({ clientAlpn: 'h2', upstreamAlpn: 'http/1.1' }), 'h2 | http/1.1');
    assert.equal(alpnLabel({ clientAlpn: null, upstreamAlpn: null }), '');
    assert.equal(pathOf({ url: 'http://a.test:8080/x/y?z=1#f', target: 'http://a.test:8080/x/y?z=1' }), '/x/y?z=1');
    assert.equal(formatBytes(1536), '1.5 kB');
    assert.equal(formatBytes(5 * 1024 * 1024), '5.0 MB');
  });
});
