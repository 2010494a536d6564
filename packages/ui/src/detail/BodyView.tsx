// Shows one body: content codings undone, then JSON pretty-printed, gRPC messages, text, an image,
// or hex.
// "Raw" shows the stored bytes as they went over the wire (still content-coded).
import { useEffect, useMemo, useState } from 'react';
import type { BodyJson } from '../../../core/src/inspector/protocol.js';
import { fetchBodyBytes } from '../api/rest.js';
import { formatBytes } from '../format.js';
import { bodyBytes, classifyBody, contentCodings, decodeInBrowser, hexDump, tryJson, utf8, type Decoded } from './body-decode.js';
import { describeGrpcBody, isGrpcContentType } from './grpc-body.js';

interface Props {
  exchangeId: number;
  side: 'request' | 'response';
  body: BodyJson | null;
  headers: Array<[string, string]> | null;
}

type View = 'pretty' | 'raw' | 'hex';

type Loaded = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; stored: Uint8Array; decoded: Decoded; via: string };

export function BodyView({ exchangeId, side, body, headers }: Props) {
  const [view, setView] = useState<View>('pretty');
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const codings = useMemo(() => contentCodings(headers), [headers]);
  const header = (name: string) => headers?.find(([n]) => n.toLowerCase() === name)?.[1] ?? null;
  const contentType = header('content-type');

  useEffect(() => {
    if (!body) return;
    const controller = new AbortController();
    (async () => {
      const stored = bodyBytes(body) ?? (await fetchBodyBytes(exchangeId, side, false, controller.signal));
      if (codings.length === 0) return { stored, decoded: { bytes: stored, warning: null }, via: '' };
      const inBrowser = await decodeInBrowser(stored, codings);
      if (inBrowser) return { stored, decoded: inBrowser, via: `decoded ${codings.join(', ')} in the browser` };
      const fromServer = await fetchBodyBytes(exchangeId, side, true, controller.signal);
      return { stored, decoded: { bytes: fromServer, warning: null }, via: `decoded ${codings.join(', ')} by hopscope` };
    })().then(
      (r) => !controller.signal.aborted && setLoaded({ state: 'ready', ...r }),
      (err: Error) => !controller.signal.aborted && setLoaded({ state: 'error', message: err.message }),
    );
    return () => controller.abort();
  }, [exchangeId, side, body, codings]);

  if (!body) return <p className="muted">No body.</p>;

  const notes: string[] = [];
  if (body.truncated) {
    notes.push(`Truncated: ${formatBytes(body.storedSize)} of ${formatBytes(body.size)} were stored.`);
  }
  return (
    <div className="body-view">
      <div className="body-bar">
        <span className="muted">
          {formatBytes(body.size)}
          {codings.length ? ` · ${codings.join(', ')}` : ''}
          {loaded.state === 'ready' && codings.length ? ` → ${formatBytes(loaded.decoded.bytes.length)} (${loaded.via})` : ''}
        </span>
        <div className="segmented" role="tablist" aria-label="Body view">
          {(['pretty', 'raw', 'hex'] as View[]).map((v) => (
            <button key={v} role="tab" aria-selected={view === v} className={view === v ? 'on' : ''} onClick={() => setView(v)}>
              {v === 'pretty' ? 'Decoded' : v === 'raw' ? 'Raw' : 'Hex'}
            </button>
          ))}
        </div>
      </div>
      {notes.map((n) => (
        <p key={n} className="notice warn">
          {n}
        </p>
      ))}
      {loaded.state === 'loading' ? <p className="muted">Loading…</p> : null}
      {loaded.state === 'error' ? <p className="notice error">Could not load the body: {loaded.message}</p> : null}
      {loaded.state === 'ready' ? (
        <>
          {loaded.decoded.warning && view === 'pretty' ? <p className="notice warn">{loaded.decoded.warning}</p> : null}
          <BodyContent view={view} stored={loaded.stored} decoded={loaded.decoded.bytes} contentType={contentType} grpcEncoding={header('grpc-encoding')} />
        </>
      ) : null}
    </div>
  );
}

interface ContentProps {
  view: View;
  stored: Uint8Array;
  decoded: Uint8Array;
  contentType: string | null;
  grpcEncoding: string | null;
}

function BodyContent({ view, stored, decoded, contentType, grpcEncoding }: ContentProps) {
  if (view === 'hex') return <pre className="code hex">{hexDump(decoded)}</pre>;
  if (view === 'raw') {
    const text = utf8(stored);
    return <pre className="code">{text ?? hexDump(stored)}</pre>;
  }
  if (isGrpcContentType(contentType) && decoded.length > 0) return <GrpcView bytes={decoded} encoding={grpcEncoding} />;
  const kind = classifyBody(decoded, contentType);
  switch (kind) {
    case 'empty':
      return <p className="muted">Empty body.</p>;
    case 'image':
      return <ImageView bytes={decoded} contentType={contentType!} />;
    case 'json':
      return <pre className="code json">{JSON.stringify(tryJson(utf8(decoded)!), null, 2)}</pre>;
    case 'text':
      return <pre className="code">{utf8(decoded)}</pre>;
    case 'binary':
      return (
        <>
          <p className="muted">Binary content{contentType ? ` (${contentType})` : ''}: shown as hex.</p>
          <pre className="code hex">{hexDump(decoded)}</pre>
        </>
      );
  }
}

/** gRPC messages decoded without a schema (compressed ones are inflated first, hence async). */
function GrpcView({ bytes, encoding }: { bytes: Uint8Array; encoding: string | null }) {
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    describeGrpcBody(bytes, encoding).then(
      (t) => live && setText(t),
      (err: Error) => live && setText(`Could not read the gRPC messages: ${err.message}`),
    );
    return () => {
      live = false;
    };
  }, [bytes, encoding]);
  return (
    <>
      <p className="muted">gRPC messages, decoded without a schema (field number: value).</p>
      <pre className="code grpc">{text ?? 'Decoding…'}</pre>
    </>
  );
}

function ImageView({ bytes, contentType }: { bytes: Uint8Array; contentType: string }) {
  const url = useMemo(() => URL.createObjectURL(new Blob([bytes as BlobPart], { type: contentType.split(';')[0] })), [bytes, contentType]);
  useEffect(() => () => URL.revokeObjectURL(url), [url]);
  return (
    <div className="image-view">
      <img src={url} alt="response body" />
    </div>
  );
}
