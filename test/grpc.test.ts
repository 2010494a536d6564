// gRPC through hopscope with a real gRPC stack on both sides (@grpc/grpc-js and proto-loader): the
// client reaches the proxy through the grpc_proxy variable grpc-js reads and trusts only the hopscope
// CA; the server has a certificate of the upstream test CA. Checks what each side got and what the
// capture holds: grpc-status in the trailers, and every message readable in the stored bodies (read
// with the inspector's own schema-less decoder, so it is checked against a real implementation).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startTestProxy, type TestProxy } from './helpers/proxy.js';
import { upstreamCaFile, upstreamTls } from './helpers/upstream.js';
import { recordEvents, type EventLog } from './helpers/events.js';
import { getExchange, listExchanges } from '../packages/core/src/store/queries.js';
import type { ExchangeDetail } from '../packages/core/src/store/row-types.js';
import { describeGrpcBody } from '../packages/ui/src/detail/grpc-body.js';

interface HelloRequest {
  name: string;
  times: number;
}
interface HelloReply {
  message: string;
  numbers: number[];
  detail: { ok: boolean; stamp: string } | null;
}
type GreeterClient = grpc.Client & {
  SayHello(request: HelloRequest, metadata: grpc.Metadata, callback: (err: grpc.ServiceError | null, reply?: HelloReply) => void): grpc.ClientUnaryCall;
  Chat(): grpc.ClientDuplexStream<HelloRequest, HelloReply>;
};

const definition = protoLoader.loadSync(fileURLToPath(new URL('./fixtures/greeter.proto', import.meta.url)), { longs: String, defaults: true });
const Greeter = (grpc.loadPackageDefinition(definition).helloworld as grpc.GrpcObject).Greeter as grpc.ServiceClientConstructor;
/** 0x12345678, as proto-loader gives 64-bit numbers (a decimal string). */
const STAMP = '305419896';

describe('gRPC through hopscope, real client and server', { timeout: 60_000 }, () => {
  let proxy: TestProxy;
  let log: EventLog;
  let server: grpc.Server;
  let port: number;
  const received: Array<{ name: string; trace: string | undefined }> = [];
  const savedEnv = { grpc_proxy: process.env.grpc_proxy, no_grpc_proxy: process.env.no_grpc_proxy };

  before(async () => {
    proxy = await startTestProxy({ upstreamCaFiles: [upstreamCaFile] });
    log = recordEvents(proxy.bus);
    server = new grpc.Server();
    server.addService(Greeter.service, {
      SayHello(call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) {
        const name = call.request.name;
        received.push({ name, trace: call.metadata.get('x-trace')[0]?.toString() });
        if (name === 'nobody') return callback({ code: grpc.status.NOT_FOUND, details: 'no such name' });
        callback(null, { message: `hello ${name}`, numbers: [1, 2, 3], detail: { ok: true, stamp: STAMP } });
      },
      Chat(call: grpc.ServerDuplexStream<HelloRequest, HelloReply>) {
        call.on('data', (request: HelloRequest) => call.write({ message: `${request.name} x${request.times}`, numbers: [], detail: null }));
        call.on('end', () => call.end());
      },
    });
    const credentials = grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(upstreamTls.key), cert_chain: Buffer.from(upstreamTls.cert) }]);
    port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
    // grpc-js reads its proxy from the environment when a channel is made.
    process.env.grpc_proxy = `http://127.0.0.1:${proxy.port}`;
    process.env.no_grpc_proxy = 'nothing.invalid';
  });

  after(async () => {
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    log.stop();
    await proxy.close();
  });

  /** A client for `host` (a name under site.test, which the upstream certificate covers). */
  function client(host: string, options: grpc.ChannelOptions = {}): GreeterClient {
    return new Greeter(`${host}:${port}`, grpc.credentials.createSsl(readFileSync(proxy.caCertPath)), options) as unknown as GreeterClient;
  }

  /** The exchanges of the tunnel to `host`, once it closed, oldest first. */
  async function captured(host: string): Promise<ExchangeDetail[]> {
    const tunnel = await log.waitFor((e) => e.kind === 'conn.tunnel' && e.host === host);
    const connId = (tunnel as { connId: number }).connId;
    await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === connId);
    await proxy.flush();
    return listExchanges(proxy.db, { connectionId: connId, order: 'oldest', limit: 100 }).map((s) => getExchange(proxy.db, s.id)!);
  }

  const header = (list: Array<[string, string]> | null, name: string) => list?.find(([n]) => n === name)?.[1];

  test('unary calls: the reply and an error status reach the client; trailers and messages are captured', async () => {
    const greeter = client('unary.site.test');
    const call = (name: string) =>
      new Promise<{ err: grpc.ServiceError | null; reply?: HelloReply }>((resolve) => {
        const metadata = new grpc.Metadata();
        metadata.set('x-trace', `trace-${name}`);
        greeter.SayHello({ name, times: 2 }, metadata, (err, reply) => resolve({ err, reply }));
      });
    const ok = await call('world');
    const missing = await call('nobody');
    greeter.close();

    assert.equal(ok.err, null);
    assert.deepEqual(ok.reply, { message: 'hello world', numbers: [1, 2, 3], detail: { ok: true, stamp: STAMP } });
    assert.equal(missing.err?.code, grpc.status.NOT_FOUND);
    assert.equal(missing.err?.details, 'no such name');
    assert.deepEqual(received.slice(-2).map((r) => [r.name, r.trace]), [['world', 'trace-world'], ['nobody', 'trace-nobody']]);

    const [hello, notFound] = await captured('unary.site.test');
    assert.equal(hello.protocol, 'h2');
    assert.equal(hello.method, 'POST');
    assert.equal(hello.target, '/helloworld.Greeter/SayHello');
    assert.equal(header(hello.requestHeaders, 'content-type'), 'application/grpc');
    assert.equal(header(hello.requestHeaders, 'te'), 'trailers');
    assert.equal(header(hello.requestHeaders, 'x-trace'), 'trace-world');
    assert.equal(hello.status, 200);
    assert.equal(header(hello.responseTrailers, 'grpc-status'), '0');
    assert.equal(await describeGrpcBody(hello.requestBody!.data, null), 'message 1 · 9 bytes\n1: "world"\n2: 2');
    assert.equal(
      await describeGrpcBody(hello.responseBody!.data, null),
      'message 1 · 31 bytes\n1: "hello world"\n2: <01 02 03>\n3 {\n  1: 1\n  2: 0x0000000012345678\n}',
    );
    // A status without a message may come as a trailers-only response: grpc-status in the only HEADERS block.
    const status = header(notFound.responseTrailers, 'grpc-status') ?? header(notFound.responseHeaders, 'grpc-status');
    const message = header(notFound.responseTrailers, 'grpc-message') ?? header(notFound.responseHeaders, 'grpc-message');
    assert.deepEqual([status, message], ['5', 'no%20such%20name'], 'as sent: gRPC percent-encodes grpc-message');
    assert.equal(notFound.state, 'complete');
  });

  test('a bidirectional stream: every message each way, in order, in one exchange', async () => {
    const greeter = client('chat.site.test');
    const chat = greeter.Chat();
    const replies: string[] = [];
    chat.on('data', (reply: HelloReply) => replies.push(reply.message));
    const ended = new Promise<void>((resolve, reject) => {
      chat.on('end', resolve);
      chat.on('error', reject);
    });
    for (const [i, name] of ['ann', 'bob', 'cy'].entries()) chat.write({ name, times: i + 1 });
    chat.end();
    await ended;
    greeter.close();
    assert.deepEqual(replies, ['ann x1', 'bob x2', 'cy x3']);

    const [exchange] = await captured('chat.site.test');
    assert.equal(exchange.target, '/helloworld.Greeter/Chat');
    assert.equal(header(exchange.responseTrailers, 'grpc-status'), '0');
    assert.equal(
      await describeGrpcBody(exchange.requestBody!.data, null),
      'message 1 · 7 bytes\n1: "ann"\n2: 1\n\nmessage 2 · 7 bytes\n1: "bob"\n2: 2\n\nmessage 3 · 6 bytes\n1: "cy"\n2: 3',
    );
    assert.equal(
      await describeGrpcBody(exchange.responseBody!.data, null),
      'message 1 · 8 bytes\n1: "ann x1"\n\nmessage 2 · 8 bytes\n1: "bob x2"\n\nmessage 3 · 7 bytes\n1: "cy x3"',
    );
  });

  test('gzip-compressed messages are stored as sent and read back inflated', async () => {
    const greeter = client('gzip.site.test', { 'grpc.default_compression_algorithm': 2 });
    const reply = await new Promise<HelloReply>((resolve, reject) =>
      greeter.SayHello({ name: 'squeezed'.repeat(20), times: 7 }, new grpc.Metadata(), (err, r) => (err ? reject(err) : resolve(r!))),
    );
    greeter.close();
    assert.equal(reply.message, `hello ${'squeezed'.repeat(20)}`);
    assert.equal(received.at(-1)?.name, 'squeezed'.repeat(20), 'the server inflated what it got');

    const [exchange] = await captured('gzip.site.test');
    assert.equal(header(exchange.requestHeaders, 'grpc-encoding'), 'gzip');
    const stored = exchange.requestBody!.data;
    assert.equal(stored[0], 1, 'the compressed flag as the client sent it');
    const text = await describeGrpcBody(stored, 'gzip');
    assert.match(text, /^message 1 · \d+ bytes, gzip → 165 bytes\n/);
    assert.ok(text.endsWith(`1: "${'squeezed'.repeat(20)}"\n2: 7`), text);
  });
});
