// A batch's trip to the writer thread. Structured cloning writes every property name of every
// object and rebuilds each one on the other side: for small exchanges and WebSocket messages that
// cost as much CPU as storing them. The busy kinds travel instead as one flat array of primitives,
// their bytes (bodies, message payloads) copied into one buffer that is moved, not copied, and the
// worker rebuilds the same objects from them. Rarer kinds travel as they are.
import type {
  ExchangeTimings,
  Failure,
  HeaderList,
  HttpCompleted,
  HttpFailed,
  HttpRequestStarted,
  HttpResponseStarted,
  HttpTrailers,
  WsFrameHeader,
  WsMessageDecoded,
} from '../capture/events.js';
import type { BodyWrite, QueueItem } from './batch-writer.js';

export interface EncodedBatch {
  values: unknown[];
  /** Every body and payload byte of the batch, back to back. */
  bytes: ArrayBuffer;
  /** Items of the kinds that are not flattened, referred to by index from `values`. */
  objects: QueueItem[];
}

const REQUEST = 0;
const RESPONSE = 1;
const TRAILERS = 2;
const COMPLETED = 3;
const FAILED = 4;
const BODY = 5;
const WS_MESSAGE = 6;
const OBJECT = 7;

/** Flattens a batch; `bytes` goes in the postMessage transfer list. */
export function encodeBatch(batch: readonly QueueItem[]): EncodedBatch {
  let byteCount = 0;
  for (const item of batch) {
    if (item.kind === 'body.write') byteCount += item.stored;
    else if (item.kind === 'ws.message') byteCount += item.payload.byteLength;
  }
  const bytes = new Uint8Array(new ArrayBuffer(byteCount));
  let offset = 0;
  const v: unknown[] = [];
  const objects: QueueItem[] = [];
  for (const e of batch) {
    switch (e.kind) {
      case 'http.request':
        v.push(REQUEST, e.seq, e.time, e.exchangeId, e.connId, e.streamId, e.protocol, e.method, e.target, e.url, e.scheme, e.host,
          e.port, e.upstreamUrl ?? null);
        pushHeaders(v, e.headers);
        break;
      case 'http.response':
        v.push(RESPONSE, e.seq, e.time, e.exchangeId, e.protocol, e.status, e.statusText, e.remoteAddress ?? null, e.remotePort ?? null);
        pushHeaders(v, e.headers);
        break;
      case 'http.trailers':
        v.push(TRAILERS, e.seq, e.time, e.exchangeId, e.side);
        pushHeaders(v, e.headers);
        break;
      case 'http.completed':
      case 'http.failed':
        if (e.kind === 'http.completed') v.push(COMPLETED);
        else v.push(FAILED, e.error.reason, e.error.message, e.error.code ?? null);
        v.push(e.seq, e.time, e.exchangeId, e.requestBodySize, e.responseBodySize);
        pushTimings(v, e.timings);
        break;
      case 'body.write':
        v.push(BODY, e.seq, e.exchangeId, e.side, e.stored, e.size, e.truncated, offset);
        for (const chunk of e.chunks) {
          bytes.set(chunk, offset);
          offset += chunk.byteLength;
        }
        break;
      case 'ws.message': {
        v.push(WS_MESSAGE, e.seq, e.time, e.exchangeId, e.connId, e.side, e.messageIndex, e.opcode, e.fin, e.frames, e.wireSize,
          e.payloadSize, e.decodedSize, e.compressed, e.truncated, e.utf8Valid, e.closeCode, e.closeReason, offset, e.payload.byteLength);
        bytes.set(e.payload, offset);
        offset += e.payload.byteLength;
        const frames = e.frameHeaders ?? [];
        v.push(frames.length);
        for (const f of frames) v.push(f.time, f.fin, f.rsv1, f.rsv2, f.rsv3, f.opcode, f.masked, f.maskKey, f.payloadLength, f.wireSize);
        break;
      }
      default:
        v.push(OBJECT, objects.length);
        objects.push(e);
    }
  }
  return { values: v, bytes: bytes.buffer, objects };
}

function pushHeaders(v: unknown[], headers: HeaderList): void {
  v.push(headers.length);
  for (const [name, value] of headers) v.push(name, value);
}

function pushTimings(v: unknown[], t: ExchangeTimings): void {
  v.push(t.dnsMs, t.connectMs, t.tlsMs, t.requestEnd, t.responseStart);
}

/** Rebuilds the items `encodeBatch` flattened, in their order; bodies and payloads are Buffers. */
export function decodeBatch(encoded: EncodedBatch): QueueItem[] {
  return new BatchReader(encoded).readAll();
}

class BatchReader {
  private i = 0;
  private readonly v: unknown[];
  private readonly bytes: Buffer;

  constructor(private readonly encoded: EncodedBatch) {
    this.v = encoded.values;
    this.bytes = Buffer.from(encoded.bytes);
  }

  readAll(): QueueItem[] {
    const out: QueueItem[] = [];
    while (this.i < this.v.length) out.push(this.item());
    return out;
  }

  private next<T>(): T {
    return this.v[this.i++] as T;
  }

  private item(): QueueItem {
    const code = this.next<number>();
    switch (code) {
      case REQUEST:
        return this.request();
      case RESPONSE:
        return this.response();
      case TRAILERS: {
        const e: HttpTrailers = { kind: 'http.trailers', seq: this.next(), time: this.next(), exchangeId: this.next(), side: this.next(), headers: [] };
        e.headers = this.headers();
        return e;
      }
      case COMPLETED: {
        const e: HttpCompleted = {
          kind: 'http.completed', seq: this.next(), time: this.next(), exchangeId: this.next(), requestBodySize: this.next(),
          responseBodySize: this.next(), timings: this.timings(),
        };
        return e;
      }
      case FAILED: {
        const error = this.failure();
        const e: HttpFailed = {
          kind: 'http.failed', error, seq: this.next(), time: this.next(), exchangeId: this.next(), requestBodySize: this.next(),
          responseBodySize: this.next(), timings: this.timings(),
        };
        return e;
      }
      case BODY: {
        const e: BodyWrite = {
          kind: 'body.write', seq: this.next(), exchangeId: this.next(), side: this.next(), stored: this.next(), size: this.next(),
          truncated: this.next(), chunks: [],
        };
        const offset = this.next<number>();
        e.chunks.push(this.bytes.subarray(offset, offset + e.stored));
        return e;
      }
      case WS_MESSAGE:
        return this.wsMessage();
      case OBJECT:
        return this.encoded.objects[this.next<number>()];
      default:
        throw new Error(`capture writer: unknown item code ${String(code)} in a batch`);
    }
  }

  private request(): HttpRequestStarted {
    const e: HttpRequestStarted = {
      kind: 'http.request', seq: this.next(), time: this.next(), exchangeId: this.next(), connId: this.next(), streamId: this.next(),
      protocol: this.next(), method: this.next(), target: this.next(), url: this.next(), scheme: this.next(), host: this.next(),
      port: this.next(), headers: [],
    };
    const upstreamUrl = this.next<string | null>();
    if (upstreamUrl !== null) e.upstreamUrl = upstreamUrl;
    e.headers = this.headers();
    return e;
  }

  private response(): HttpResponseStarted {
    const e: HttpResponseStarted = {
      kind: 'http.response', seq: this.next(), time: this.next(), exchangeId: this.next(), protocol: this.next(), status: this.next(),
      statusText: this.next(), headers: [],
    };
    const remoteAddress = this.next<string | null>();
    const remotePort = this.next<number | null>();
    if (remoteAddress !== null) e.remoteAddress = remoteAddress;
    if (remotePort !== null) e.remotePort = remotePort;
    e.headers = this.headers();
    return e;
  }

  private wsMessage(): WsMessageDecoded {
    const e: WsMessageDecoded = {
      kind: 'ws.message', seq: this.next(), time: this.next(), exchangeId: this.next(), connId: this.next(), side: this.next(),
      messageIndex: this.next(), opcode: this.next(), fin: this.next(), frames: this.next(), wireSize: this.next(),
      payloadSize: this.next(), decodedSize: this.next(), compressed: this.next(), truncated: this.next(), utf8Valid: this.next(),
      closeCode: this.next(), closeReason: this.next(), payload: Buffer.alloc(0), frameHeaders: [],
    };
    const offset = this.next<number>();
    e.payload = this.bytes.subarray(offset, offset + this.next<number>());
    const count = this.next<number>();
    for (let n = 0; n < count; n++) {
      const f: WsFrameHeader = {
        time: this.next(), fin: this.next(), rsv1: this.next(), rsv2: this.next(), rsv3: this.next(), opcode: this.next(),
        masked: this.next(), maskKey: this.next(), payloadLength: this.next(), wireSize: this.next(),
      };
      e.frameHeaders!.push(f);
    }
    return e;
  }

  private headers(): HeaderList {
    const count = this.next<number>();
    const headers: HeaderList = new Array(count);
    for (let n = 0; n < count; n++) headers[n] = [this.next(), this.next()];
    return headers;
  }

  private timings(): ExchangeTimings {
    return { dnsMs: this.next(), connectMs: this.next(), tlsMs: this.next(), requestEnd: this.next(), responseStart: this.next() };
  }

  private failure(): Failure {
    const failure: Failure = { reason: this.next(), message: this.next() };
    const code = this.next<string | null>();
    if (code !== null) failure.code = code;
    return failure;
  }
}
