// The one error type the WebSocket decoders throw or report, with stable codes the tap reports as-is.
import type { WsFrame } from './frame-parser.js';

export type WsErrorCode =
  | 'bad-opcode' // a reserved opcode (3-7, 11-15)
  | 'bad-control-frame' // a control frame longer than 125 bytes or not final
  | 'bad-length' // a 64-bit length with the top bit set, or beyond 2^53 (not countable)
  | 'bad-mask' // a client frame not masked, or a server frame masked
  | 'bad-rsv' // an RSV bit that no negotiated extension allows, or RSV1 where permessage-deflate forbids it
  | 'bad-continuation' // a continuation frame with no message to continue
  | 'bad-fragmentation' // a new data frame while a fragmented message is still open
  | 'bad-close' // a close frame with a 1-byte payload
  | 'bad-deflate' // the permessage-deflate stream does not inflate
  | 'deflate-bomb' // a message inflated past the size or ratio limit: inflating stopped
  | 'deflate-truncated' // a compressed message was cut by a capture cap, so the shared window is lost
  | 'deflate-backlog'; // compressed bytes waiting to inflate went over the queue limit

export class WsDecodeError extends Error {
  override readonly name = 'WsDecodeError';
  /** Frames decoded from the same push before the error, so nothing already seen is lost. */
  frames: WsFrame[] = [];

  constructor(
    readonly code: WsErrorCode,
    message: string,
  ) {
    super(message);
  }
}
