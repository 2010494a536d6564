// An upstream call over HTTP/2: one stream of a shared session (h2 after ALPN, or h2c). A request
// with a body is sent with `waitForTrailers`, so its trailers (or an empty END_STREAM) follow the
// last DATA; a stream that closes before END_STREAM from the upstream is a failure (RST_STREAM,
// GOAWAY, the connection lost).
import http2 from 'node:http2';
import type { Failure, HeaderList } from '../capture/events.js';
import { errorCodeName } from '../decode/h2/frame-types.js';
import { h2Trailers, pairsFromRawH2 } from './header-translation.js';
import { timingsOf, type UpstreamCall, type UpstreamCallEvents } from './upstream-call.js';
import type { H2Route } from './upstream-origins.js';

export function startH2Call(route: H2Route, headers: http2.OutgoingHttpHeaders, hasBody: boolean, events: UpstreamCallEvents): UpstreamCall {
  const timings = timingsOf(route.timings);
  let stream: http2.ClientHttp2Stream;
  try {
    stream = route.session.request(headers, { endStream: !hasBody, waitForTrailers: hasBody });
  } catch (err) {
    // The session went away between routing and now, or Node refused a header.
    const failure: Failure = { reason: 'closed', message: `cannot open a stream upstream: ${(err as Error).message}`, code: (err as NodeJS.ErrnoException).code };
    queueMicrotask(() => events.error(failure));
    return { timings, write: () => true, onDrain: () => {}, end: () => {}, pause: () => {}, resume: () => {}, abort: () => {} };
  }
  let requestTrailers: http2.OutgoingHttpHeaders = {};
  let responseTrailers: HeaderList = [];
  let responded = false;
  let done = false;
  let lastError: (Error & { code?: string }) | null = null;

  stream.on('wantTrailers', () => stream.sendTrailers(requestTrailers));
  stream.on('headers', (h: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
    events.informational(Number(h[':status']), pairsFromRawH2(raw));
  });
  stream.on('response', (h: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
    responded = true;
    events.response({
      protocol: route.protocol,
      status: Number(h[':status']),
      statusText: '',
      headers: pairsFromRawH2(raw),
      remoteAddress: route.remoteAddress,
      remotePort: route.remotePort,
    });
  });
  stream.on('trailers', (_h: unknown, _flags: number, raw: string[]) => (responseTrailers = pairsFromRawH2(raw)));
  stream.on('data', (chunk: Buffer) => events.data(chunk));
  stream.once('end', () => {
    if (done || !responded) return;
    done = true;
    events.end(responseTrailers);
  });
  stream.on('error', (err: Error & { code?: string }) => (lastError = err));
  stream.once('close', () => {
    if (done) return;
    done = true;
    events.error(closeFailure(stream, lastError, responded));
  });

  return {
    timings,
    write: (chunk) => stream.write(chunk),
    onDrain: (callback) => stream.once('drain', callback),
    end(trailers: HeaderList) {
      requestTrailers = h2Trailers(trailers);
      stream.end();
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    abort() {
      done = true;
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    },
  };
}

/** Why a stream closed before its response was complete, in the capture's taxonomy. */
export function closeFailure(stream: http2.ClientHttp2Stream, err: (Error & { code?: string }) | null, responded: boolean): Failure {
  const code = stream.rstCode ?? 0;
  if (code !== 0) {
    const name = errorCodeName(code);
    return { reason: 'reset', message: `the upstream reset the stream (${name})`, code: name };
  }
  if (err) return { reason: responded ? 'aborted' : 'closed', message: err.message, ...(err.code ? { code: err.code } : {}) };
  return { reason: responded ? 'aborted' : 'closed', message: 'the upstream closed the stream before the response was complete' };
}
