// Everything the handlers of one running proxy share.
import type http from 'node:http';
import type https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CaptureBus } from '../capture/bus.js';
import type { IdAllocator } from '../capture/ids.js';
import type { ProxyConfig } from './config.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { ResolveMap } from './resolve-map.js';
import type { UpstreamPool } from './upstream-pool.js';

export interface ProxyContext {
  config: ProxyConfig;
  bus: CaptureBus;
  ids: IdAllocator;
  registry: ConnectionRegistry;
  resolveMap: ResolveMap;
  lookup: LookupFunction;
  /** Keep-alive upstream connections of the active path (absolute-form requests). */
  upstreams: UpstreamPool;
  /** Node agents: the WebSocket upgrade path uses their TLS options; proxy-server.ts destroys them on close. */
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}
