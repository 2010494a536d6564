// Upstream TCP dialing for tunnels: name resolution (through --resolve rules first), connect
// with a timeout, and the timings both took.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, connect, type Socket, type LookupFunction } from 'node:net';
import { nowMs } from '../capture/clock.js';
import { ProxyError } from './failure.js';
import type { ResolveMap } from './resolve-map.js';

export interface DialResult {
  socket: Socket;
  remoteAddress: string;
  remotePort: number;
  dnsMs: number;
  connectMs: number;
}

export async function dialTcp(
  host: string,
  port: number,
  resolveMap: ResolveMap,
  timeoutMs: number,
): Promise<DialResult> {
  const t0 = nowMs();
  const address = await resolveHost(host, resolveMap);
  const t1 = nowMs();
  const socket = connect({ host: address, port, noDelay: true, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ProxyError('timeout', `connecting to ${host}:${port} timed out after ${timeoutMs} ms`, 'ETIMEDOUT'));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve();
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
  return {
    socket,
    remoteAddress: socket.remoteAddress ?? address,
    remotePort: socket.remotePort ?? port,
    dnsMs: t1 - t0,
    connectMs: nowMs() - t1,
  };
}

/** A literal address is used as is; mapped names skip DNS; anything else asks the system resolver. */
export function resolveHost(host: string, resolveMap: ResolveMap): Promise<string> {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  const mapped = resolveMap.lookup(bare);
  if (mapped) return Promise.resolve(mapped);
  if (isIP(bare)) return Promise.resolve(bare);
  return new Promise((resolve, reject) => {
    dnsLookup(bare, { all: false }, (err, address) => (err ? reject(err) : resolve(address)));
  });
}

/** A `lookup` for Node's http agents that honours --resolve rules before asking DNS. */
export function lookupWithMap(resolveMap: ResolveMap): LookupFunction {
  return (hostname, options, callback) => {
    const mapped = resolveMap.lookup(hostname);
    if (!mapped) return dnsLookup(hostname, options, callback as never);
    const family = isIP(mapped);
    process.nextTick(() => {
      if (options.all) (callback as (e: null, a: LookupAddress[]) => void)(null, [{ address: mapped, family }]);
      else callback(null, mapped, family);
    });
  };
}
