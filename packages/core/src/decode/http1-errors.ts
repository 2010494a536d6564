// The one error type the HTTP/1 decoder throws, with stable codes the tap reports as-is.
import type { Http1Event } from './http1-decoder.js';

export type Http1ErrorCode =
  | 'bad-start-line' // request line or status line does not parse
  | 'bad-version' // not HTTP/1.x
  | 'bad-header' // a header or trailer line does not parse
  | 'headers-too-large' // head or trailer block over maxHeaderBytes
  | 'bad-chunk-size' // a chunk-size line does not parse or is too long
  | 'bad-chunk' // chunk data not followed by CRLF
  | 'bad-content-length' // invalid or conflicting Content-Length
  | 'bad-transfer-encoding' // a request whose Transfer-Encoding does not end in chunked
  | 'switch-pending-too-large' // too many bytes held while waiting to learn whether the protocol switched
  | 'unsolicited-response' // a response with no request waiting for it (raised by the tap)
  | 'truncated' // the peer half-closed mid-message
  | 'data-after-end'; // bytes pushed after end()

export class Http1DecodeError extends Error {
  override readonly name = 'Http1DecodeError';
  /**
   * Events decoded from the same push before the error, so that what precedes a fault is
   * reported the same way whatever the chunking.
   */
  events: Http1Event[] = [];

  constructor(
    readonly code: Http1ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
