// Short plain-text answers hopscope gives an HTTP/2 stream itself (407, 501, a CONNECT that could
// not be dialled), and the HTTP/2 view of a request's header list.
import http2 from 'node:http2';
import type { HeaderList } from '../capture/events.js';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** Answers `hopscope: TEXT` and ends the stream. */
export function answerStream(stream: http2.ServerHttp2Stream, status: number, text: string, extra: http2.OutgoingHttpHeaders = {}): void {
  respondText(stream, status, `hopscope: ${text}\n`, extra);
}

/** Answers with a plain-text body as is; a client still sending is then told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1). */
export function respondText(stream: http2.ServerHttp2Stream, status: number, body: string, extra: http2.OutgoingHttpHeaders = {}): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', ...extra });
  stream.end(body, () => {
    if (!stream.closed) stream.close(NGHTTP2_NO_ERROR);
  });
}

/** A pseudo-header's value (they come first in a header block). */
export function pseudoHeader(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) {
    if (n === name) return v;
    if (!n.startsWith(':')) return undefined;
  }
  return undefined;
}
