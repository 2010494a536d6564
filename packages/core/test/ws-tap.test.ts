// The WebSocket tap from byte fixtures: the same events however the bytes of each side are cut,
// messages with their frames, permessage-deflate per direction, and how the WebSocket ended.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import { CaptureBus } from '../src/capture/bus.js';
import type { CaptureEvent, Failure, HeaderList, Side } from '../src/capture/events.js';
import { WsTap, isWebSocketUpgrade, tapAfterUpgrade, type WsTapOptions } from '../src/taps/ws-tap.js';
import { encodeFrame, everyCut, seededRandom, randomChunks } from './helpers/ws-encode.js';

const MASK = Buffer.from('37fa213d', 'hex');
const REQUEST: HeaderList = [['Host', 'ws.test'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade']];
const RESPONSE: HeaderList = [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Protocol', 'chat']];
const DEFLATE_OFFER: HeaderList = [...REQUEST, ['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits']];

type Step = [Side, Buffer] | ['end', Side] | ['close', Failure | null];

function newTap(overrides: Partial<WsTapOptions> = {}) {
  const bus = new CaptureBus();
  const events: CaptureEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const tap = new WsTap({ connId: 3, bus, exchangeId: 42, requestHeaders: REQUEST, responseHeaders: RESPONSE, payloadLimit: 1 << 20, ...overrides });
  const closed = new Promise<void>((resolve) => bus.subscribe((e) => e.kind === 'ws.closed' && resolve()));
  return { tap, events, closed };
}

/** Plays the steps; each data step is cut into the given chunks (all at once when `cut` is absent). */
function play(tap: WsTap, steps: Step[], cut: (bytes: Buffer) => Buffer[] = (b) => [b]): void {
  for (const step of steps) {
    if (step[0] === 'end') tap.onEnd(step[1]);
    else if (step[0] === 'close') tap.onClose(step[1]);
    else for (const chunk of cut(step[1])) tap.onData(step[0], chunk);
  }
}

/** One short line per event (time and seq left out), so whole runs compare at a glance. */
function summary(events: CaptureEvent[]): string[] {
  return events.flatMap((e) => {
    switch (e.kind) {
      case 'ws.opened':
        return `opened ${e.exchangeId} ${e.subprotocol} ${e.deflate ? JSON.stringify(e.deflate) : 'no-deflate'}`;
      case 'ws.message': {
        const body = e.opcode === 2 ? `${e.payload.byteLength}B` : JSON.stringify(Buffer.from(e.payload).toString('utf8'));
        const frames = (e.frameHeaders ?? []).map(
          (f, i) => `frame ${e.side} #${e.messageIndex}.${i} op${f.opcode} fin=${+f.fin} rsv1=${+f.rsv1} mask=${f.maskKey} len=${f.payloadLength} wire=${f.wireSize}`,
        );
        return [
          ...frames,
          `message ${e.side} #${e.messageIndex} op${e.opcode} fin=${+e.fin} frames=${e.frames} wire=${e.wireSize} payload=${e.payloadSize} decoded=${e.decodedSize} z=${+e.compressed} trunc=${+e.truncated} utf8=${e.utf8Valid} close=${e.closeCode}/${e.closeReason} ${body}`,
        ];
      }
      case 'ws.closed':
        return `closed by=${e.closedBy} ${e.closeCode}/${e.closeReason} clean=${e.clean} error=${e.error?.reason ?? null} msgs=${e.messagesFromClient}/${e.messagesFromServer} bytes=${e.bytesFromClient}/${e.bytesFromServer}`;
      case 'decode.failed':
        return `decode.failed ${e.decoder} ${e.side} ${e.code}`;
      default:
        return e.kind;
    }
  });
}

const client = (spec: Parameters<typeof encodeFrame>[0]) => encodeFrame({ mask: MASK, ...spec });
const closePayload = (code: number, reason: string) => Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);

// A conversation with every frame shape: fragments with a ping between them, 7/16/64-bit lengths,
// invalid UTF-8, and a closing handshake.
const conversation: Step[] = [
  ['client', Buffer.concat([
    client({ opcode: 1, fin: false, payload: 'Hel' }),
    client({ opcode: 9, payload: 'are you there' }),
    client({ opcode: 0, fin: false, payload: 'lo, ' }),
    client({ opcode: 0, payload: 'wörld' }),
  ])],
  ['server', encodeFrame({ opcode: 10, payload: 'are you there' })],
  ['server', encodeFrame({ opcode: 2, payload: Buffer.alloc(300, 7) })],
  ['client', client({ opcode: 2, payload: Buffer.alloc(20, 1), lengthForm: 64 })],
  ['server', encodeFrame({ opcode: 1, payload: Buffer.from([0x61, 0xff, 0x62]) })],
  ['client', client({ opcode: 8, payload: closePayload(4001, 'done here') })],
  ['server', encodeFrame({ opcode: 8, payload: closePayload(4001, '') })],
  ['end', 'server'],
  ['end', 'client'],
  ['close', null],
];

describe('WebSocket tap', { timeout: 10_000 }, () => {
  test('decodes every frame and message of both sides, the same at every split point', () => {
    const whole = newTap();
    play(whole.tap, conversation);
    const expected = summary(whole.events);
    assert.deepEqual(expected, [
      'opened 42 chat no-deflate',
      'frame client #1.0 op9 fin=1 rsv1=0 mask=37fa213d len=13 wire=19',
      'message client #1 op9 fin=1 frames=1 wire=19 payload=13 decoded=13 z=0 trunc=0 utf8=null close=null/null "are you there"',
      'frame client #0.0 op1 fin=0 rsv1=0 mask=37fa213d len=3 wire=9',
      'frame client #0.1 op0 fin=0 rsv1=0 mask=37fa213d len=4 wire=10',
      'frame client #0.2 op0 fin=1 rsv1=0 mask=37fa213d len=6 wire=12',
      'message client #0 op1 fin=1 frames=3 wire=31 payload=13 decoded=13 z=0 trunc=0 utf8=true close=null/null "Hello, wörld"',
      'frame server #2.0 op10 fin=1 rsv1=0 mask=null len=13 wire=15',
      'message server #2 op10 fin=1 frames=1 wire=15 payload=13 decoded=13 z=0 trunc=0 utf8=null close=null/null "are you there"',
      'frame server #3.0 op2 fin=1 rsv1=0 mask=null len=300 wire=304',
      'message server #3 op2 fin=1 frames=1 wire=304 payload=300 decoded=300 z=0 trunc=0 utf8=null close=null/null 300B',
      'frame client #4.0 op2 fin=1 rsv1=0 mask=37fa213d len=20 wire=34',
      'message client #4 op2 fin=1 frames=1 wire=34 payload=20 decoded=20 z=0 trunc=0 utf8=null close=null/null 20B',
      'frame server #5.0 op1 fin=1 rsv1=0 mask=null len=3 wire=5',
      'message server #5 op1 fin=1 frames=1 wire=5 payload=3 decoded=3 z=0 trunc=0 utf8=false close=null/null "a\uFFFDb"',
      'frame client #6.0 op8 fin=1 rsv1=0 mask=37fa213d len=11 wire=17',
      'message client #6 op8 fin=1 frames=1 wire=17 payload=11 decoded=11 z=0 trunc=0 utf8=true close=4001/done here "\\u000f\uFFFDdone here"',
      'frame server #7.0 op8 fin=1 rsv1=0 mask=null len=2 wire=4',
      'message server #7 op8 fin=1 frames=1 wire=4 payload=2 decoded=2 z=0 trunc=0 utf8=true close=4001/ "\\u000f\uFFFD"',
      'closed by=client 4001/done here clean=true error=null msgs=4/4 bytes=101/328',
    ]);
    const random = seededRandom(11);
    for (let run = 0; run < 60; run++) {
      const cut = (bytes: Buffer): Buffer[] => randomChunks(bytes, random, 1 + run);
      const again = newTap();
      play(again.tap, conversation, cut);
      assert.deepEqual(summary(again.events), expected, `random run ${run}`);
    }
    for (let i = 0; i < conversation.length; i++) {
      const step = conversation[i];
      if (!Buffer.isBuffer(step[1])) continue;
      for (const [label, chunks] of everyCut(step[1], 0)) {
        const again = newTap();
        play(again.tap, conversation, (bytes) => (bytes === step[1] ? chunks : [bytes]));
        assert.deepEqual(summary(again.events), expected, `step ${i}, ${label}`);
      }
    }
  });

  test('permessage-deflate: each side inflated with its own context, in wire order, compressed flagged', async () => {
    const responseHeaders: HeaderList = [...RESPONSE, ['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits=10; server_no_context_takeover']];
    // The client keeps its context (the second message refers to the first); the server resets per message.
    const clientDeflate = zlib.createDeflateRaw({ windowBits: 10 });
    const deflateWith = (stream: zlib.DeflateRaw, text: string) =>
      new Promise<Buffer>((resolve) => {
        const out: Buffer[] = [];
        const onData = (c: Buffer) => out.push(c);
        stream.on('data', onData);
        stream.write(text);
        stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          stream.removeListener('data', onData);
          const all = Buffer.concat(out);
          resolve(all.subarray(0, all.length - 4)); // drop the 00 00 ff ff tail (RFC 7692 §7.2.1)
        });
      });
    const text = 'the same words again and again, the same words again and again';
    const c1 = await deflateWith(clientDeflate, text);
    const c2 = await deflateWith(clientDeflate, text);
    assert.ok(c2.length < c1.length, 'the second message reuses the first one\'s window');
    const s1 = zlib.deflateRawSync(Buffer.from('server says hi'), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const steps: Step[] = [
      ['client', Buffer.concat([client({ opcode: 1, rsv1: true, fin: false, payload: c1.subarray(0, 5) }), client({ opcode: 0, payload: c1.subarray(5) })])],
      ['server', encodeFrame({ opcode: 9, payload: 'x' })],
      ['server', encodeFrame({ opcode: 1, rsv1: true, payload: s1 })],
      ['client', client({ opcode: 1, rsv1: true, payload: c2 })],
      ['client', client({ opcode: 2, payload: 'raw' })],
      ['close', { reason: 'reset', message: 'read ECONNRESET', code: 'ECONNRESET' }],
    ];
    const run = async (cut?: (b: Buffer) => Buffer[]) => {
      const t = newTap({ requestHeaders: DEFLATE_OFFER, responseHeaders });
      play(t.tap, steps, cut);
      await t.closed;
      // Each side's messages come in wire order; across sides, inflating may reorder them.
      const index = (line: string) => Number(/#(\d+)/.exec(line)?.[1] ?? -1);
      const lines = summary(t.events).filter((line) => !line.startsWith('frame'));
      for (const side of ['client', 'server']) {
        const mine = lines.filter((l) => l.startsWith(`message ${side}`)).map(index);
        assert.deepEqual(mine, [...mine].sort((a, b) => a - b), `${side} messages in wire order`);
      }
      const messages = lines.filter((l) => l.startsWith('message')).sort((a, b) => index(a) - index(b));
      return [lines[0], ...messages, lines[lines.length - 1]];
    };
    const expected = await run();
    assert.deepEqual(expected, [
      'opened 42 chat {"client":{"noContextTakeover":false,"maxWindowBits":10},"server":{"noContextTakeover":true,"maxWindowBits":15}}',
      `message client #0 op1 fin=1 frames=2 wire=${c1.length + 12} payload=${c1.length} decoded=${text.length} z=1 trunc=0 utf8=true close=null/null ${JSON.stringify(text)}`,
      'message server #1 op9 fin=1 frames=1 wire=3 payload=1 decoded=1 z=0 trunc=0 utf8=null close=null/null "x"',
      `message server #2 op1 fin=1 frames=1 wire=${s1.length + 2} payload=${s1.length} decoded=14 z=1 trunc=0 utf8=true close=null/null "server says hi"`,
      `message client #3 op1 fin=1 frames=1 wire=${c2.length + 6} payload=${c2.length} decoded=${text.length} z=1 trunc=0 utf8=true close=null/null ${JSON.stringify(text)}`,
      'message client #4 op2 fin=1 frames=1 wire=9 payload=3 decoded=3 z=0 trunc=0 utf8=null close=null/null 3B',
      `closed by=null null/null clean=false error=reset msgs=3/2 bytes=${c1.length + c2.length + 12 + 6 + 9}/${3 + s1.length + 2}`,
    ]);
    const random = seededRandom(5);
    for (let i = 0; i < 10; i++) assert.deepEqual(await run((b) => randomChunks(b, random, 1 + i)), expected, `random run ${i}`);
  });

  test('who closed first follows the wire, even when the other side comes back from its inflater sooner', async () => {
    const responseHeaders: HeaderList = [...RESPONSE, ['Sec-WebSocket-Extensions', 'permessage-deflate']];
    // The client's inflater is busy with a large message when both close frames arrive.
    const big = zlib.deflateRawSync(Buffer.alloc(8 << 20, 0x61), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const t = newTap({ requestHeaders: DEFLATE_OFFER, responseHeaders, maxDecodedSize: 16 << 20, maxInflateRatio: 1e6 });
    play(t.tap, [
      ['client', client({ opcode: 1, rsv1: true, payload: big })],
      ['client', client({ opcode: 8, payload: closePayload(1000, 'client first') })],
      ['server', encodeFrame({ opcode: 8, payload: closePayload(1000, 'server echo') })],
      ['end', 'client'],
      ['end', 'server'],
      ['close', null],
    ]);
    await t.closed;
    const closed = t.events.find((e) => e.kind === 'ws.closed');
    assert.deepEqual(closed && [closed.closedBy, closed.closeReason, closed.clean], ['client', 'client first', true]);
  });

  test('a protocol error is reported once; the tap counts bytes only from then on', () => {
    const t = newTap();
    play(t.tap, [
      ['server', Buffer.concat([encodeFrame({ opcode: 1, payload: 'fine' }), encodeFrame({ opcode: 3, payload: 'reserved' })])],
      ['client', client({ opcode: 1, payload: 'not decoded any more' })],
      ['server', encodeFrame({ opcode: 1, payload: 'nor this' })],
      ['close', null],
    ]);
    assert.deepEqual(summary(t.events).filter((l) => !l.startsWith('frame')), [
      'opened 42 chat no-deflate',
      'message server #0 op1 fin=1 frames=1 wire=6 payload=4 decoded=4 z=0 trunc=0 utf8=true close=null/null "fine"',
      'decode.failed ws server bad-opcode',
      'closed by=null null/null clean=false error=decode msgs=0/1 bytes=26/26',
    ]);
  });

  test('a broken deflate stream is a decode failure; a server frame that is masked too', async () => {
    const responseHeaders: HeaderList = [...RESPONSE, ['Sec-WebSocket-Extensions', 'permessage-deflate']];
    const t = newTap({ requestHeaders: DEFLATE_OFFER, responseHeaders });
    play(t.tap, [['client', client({ opcode: 1, rsv1: true, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) })], ['close', null]]);
    await t.closed;
    assert.ok(summary(t.events).includes('decode.failed ws client bad-deflate'));
    assert.equal(t.events.find((e) => e.kind === 'ws.closed' && e.error?.reason === 'decode') !== undefined, true);

    const masked = newTap();
    play(masked.tap, [['server', encodeFrame({ opcode: 1, payload: 'x', mask: MASK })], ['close', null]]);
    assert.ok(summary(masked.events).includes('decode.failed ws server bad-mask'));
  });

  test('how it ended: no close frame, mid-frame, mid-message, unanswered close', () => {
    const ended = (steps: Step[]) => {
      const t = newTap();
      play(t.tap, [...steps, ['close', null]]);
      const closed = t.events.find((e) => e.kind === 'ws.closed');
      assert.ok(closed?.kind === 'ws.closed');
      return { error: closed.error, clean: closed.clean, by: closed.closedBy, lines: summary(t.events) };
    };
    const silent = ended([['end', 'server'], ['end', 'client']]);
    assert.deepEqual(silent.error, { reason: 'closed', message: 'the server closed without a close frame' });

    const midFrame = ended([['client', client({ opcode: 2, payload: Buffer.alloc(50) }).subarray(0, 20)], ['end', 'client']]);
    assert.deepEqual(midFrame.error, { reason: 'aborted', message: 'the client ended the connection in the middle of a frame' });

    const midMessage = ended([['server', encodeFrame({ opcode: 1, fin: false, payload: 'part' })], ['end', 'server']]);
    assert.equal(midMessage.error?.reason, 'aborted');
    assert.ok(midMessage.lines.some((l) => l.startsWith('message server #0 op1 fin=0 frames=1')), 'the unfinished message is kept');

    const unanswered = ended([['server', encodeFrame({ opcode: 8, payload: closePayload(1001, 'going away') })], ['end', 'server']]);
    assert.deepEqual([unanswered.error, unanswered.clean, unanswered.by], [null, false, 'server']);
  });

  test('payloads over the limit are cut and flagged; frames past the per-message limit are only counted', () => {
    const t = newTap({ payloadLimit: 4, maxFramesPerMessage: 2 });
    play(t.tap, [
      ['server', encodeFrame({ opcode: 2, payload: Buffer.alloc(10, 9) })],
      ['client', Buffer.concat([0, 1, 2, 3].map((i) => client({ opcode: i === 0 ? 1 : 0, fin: i === 3, payload: 'ab' })))],
      ['close', null],
    ]);
    const lines = summary(t.events);
    assert.ok(lines.includes('message server #0 op2 fin=1 frames=1 wire=12 payload=10 decoded=10 z=0 trunc=1 utf8=null close=null/null 4B'));
    assert.equal(lines.filter((l) => l.startsWith('frame client')).length, 2);
    assert.ok(lines.includes('message client #1 op1 fin=1 frames=4 wire=32 payload=8 decoded=8 z=0 trunc=1 utf8=true close=null/null "abab"'));
  });

  test('only a switch to WebSocket gets the WebSocket tap', () => {
    const bus = new CaptureBus();
    const ctx = { connId: 1, bus, bodyCaptureLimit: 100 };
    assert.equal(isWebSocketUpgrade({ exchangeId: 1, requestHeaders: REQUEST, responseHeaders: [['upgrade', 'WebSocket']] }), true);
    assert.equal(isWebSocketUpgrade({ exchangeId: 1, requestHeaders: [[':protocol', 'websocket']], responseHeaders: [] }), true, 'RFC 8441');
    assert.equal(tapAfterUpgrade(ctx, { exchangeId: 1, requestHeaders: REQUEST, responseHeaders: [['Upgrade', 'h2c']] }), null);
    assert.equal(tapAfterUpgrade(ctx, { exchangeId: 1, requestHeaders: [], responseHeaders: [] }), null, 'a CONNECT tunnel');
    assert.ok(tapAfterUpgrade(ctx, { exchangeId: 1, requestHeaders: REQUEST, responseHeaders: RESPONSE }) instanceof WsTap);
  });
});
