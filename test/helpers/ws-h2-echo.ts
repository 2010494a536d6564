// The server end of a WebSocket over HTTP/2 (RFC 8441) for tests: on an extended CONNECT stream
// it speaks WebSocket frames (read with hopscope's own parser, written with the test encoder),
// echoes data messages (re-compressing compressed ones), answers pings and the close.
import type http2 from 'node:http2';
import zlib from 'node:zlib';
import { encodeFrame } from '../../packages/core/test/helpers/ws-encode.js';
import { WsFrameParser } from '../../packages/core/src/decode/ws/frame-parser.js';
import { WsMessageAssembler, type WsWireMessage } from '../../packages/core/src/decode/ws/message-assembler.js';

export const DEFLATE = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
export const deflate = (text: string) => zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
export const inflate = (bytes: Buffer) =>
  zlib.inflateRawSync(Buffer.concat([bytes, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });

/** Reads WebSocket messages from one side's bytes (the peers' own minimal WebSocket endpoint). */
export function messageReader(side: 'client' | 'server', compressed: boolean, onMessage: (m: WsWireMessage) => void) {
  const parser = new WsFrameParser({ side, allowedRsv: { rsv1: compressed } });
  const assembler = new WsMessageAssembler({ deflate: compressed });
  return (chunk: Buffer) => {
    for (const frame of parser.push(chunk)) {
      const message = assembler.push(frame);
      if (message) onMessage(message);
    }
  };
}

/** The server end: echoes data messages (re-compressing compressed ones), answers pings and the close. */
export function webSocketStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end();
    return;
  }
  const compressed = String(headers['sec-websocket-extensions'] ?? '').includes('permessage-deflate');
  stream.respond({ ':status': 200, ...(compressed ? { 'sec-websocket-extensions': DEFLATE } : {}) });
  stream.on('data', messageReader('client', compressed, (m) => {
    if (m.name === 'ping') stream.write(encodeFrame({ opcode: 0xa, payload: m.payload }));
    else if (m.name === 'close') stream.end(encodeFrame({ opcode: 8, payload: m.payload }));
    else if (m.compressed) stream.write(encodeFrame({ opcode: m.opcode, rsv1: true, payload: deflate(inflate(m.payload).toString()) }));
    else stream.write(encodeFrame({ opcode: m.opcode, payload: m.payload }));
  }));
}
