// Run by dns-failure.test.ts inside a network namespace with only loopback, where a name lookup
// fails at once without a packet leaving the machine. Prints what the client and capture saw.
import { startTestProxy } from './proxy.js';
import { proxiedRequest, rawExchange } from './clients.js';
import { recordEvents } from './events.js';
import { getExchange, getConnection } from '../../packages/core/src/store/queries.js';

const proxy = await startTestProxy({ resolve: [] });
const log = recordEvents(proxy.bus);
const res = await proxiedRequest(proxy, 'http://no-such-host.invalid/path');
const failed = await log.waitFor((e) => e.kind === 'http.failed');
const connectAnswer = await rawExchange(proxy, 'CONNECT no-such-host.invalid:443 HTTP/1.1\r\nHost: no-such-host.invalid:443\r\n\r\n');
const tunnel = log.of('conn.tunnel')[0];
await log.waitFor((e) => e.kind === 'conn.closed' && e.connId === tunnel.connId);
await proxy.flush();
const exchange = getExchange(proxy.db, (failed as { exchangeId: number }).exchangeId);
const connection = getConnection(proxy.db, tunnel.connId);
process.stdout.write(
  JSON.stringify({
    status: res.status,
    body: res.body.toString(),
    exchangeError: exchange?.error,
    connectAnswer,
    connectionError: connection?.error,
  }),
);
await proxy.close();
