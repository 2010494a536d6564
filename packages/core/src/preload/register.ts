// The preload `hopscope run` puts in NODE_OPTIONS (`--import`), so that Node's own clients, which
// ignore HTTP_PROXY on Node 20, go through the proxy named there:
// - http and https: the global agents are replaced by CONNECT-tunnelling ones (requests with their
//   own agent are left alone), and requests that bring their own createConnection (the `ws`
//   client) are tunnelled too;
// - fetch: undici's global dispatcher becomes an EnvHttpProxyAgent, loaded from the `undici`
//   package the first time fetch asks for a dispatcher. The import URL may name the package's
//   path as `?undici=/abs/path` (hopscope's own copy); without it, `undici` is resolved from here.
// Trust of hopscope's CA comes from NODE_EXTRA_CA_CERTS, which `hopscope run` sets as well.
// Runs inside the user's processes: Node built-ins only, and it must never throw.
import http from 'node:http';
import https from 'node:https';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { readProxyEnv } from './no-proxy.js';
import { TunnellingHttpAgent, TunnellingHttpsAgent, tunnelOwnConnections } from './tunnel-agent.js';

const UNDICI_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

function install(): void {
  const env = readProxyEnv(process.env);
  if (!env.http && !env.https) return;
  // The same settings as Node 20's own global agents.
  const agentOptions = { keepAlive: true, scheduling: 'lifo' as const, timeout: 5000, proxyEnv: env };
  if (env.http) http.globalAgent = new TunnellingHttpAgent(agentOptions);
  if (env.https) https.globalAgent = new TunnellingHttpsAgent(agentOptions);
  tunnelOwnConnections(http, 'http', env);
  tunnelOwnConnections(https, 'https', env);
  syncBuiltinESMExports(); // `import { request } from 'node:http'` sees the wrapped functions
  installFetchDispatcher();
}

function installFetchDispatcher(): void {
  if (typeof globalThis.fetch !== 'function' || UNDICI_DISPATCHER in globalThis) return;
  const undiciPath = new URL(import.meta.url).searchParams.get('undici') || 'undici';
  // Loaded lazily: most processes never call fetch, and undici takes a while to load.
  Object.defineProperty(globalThis, UNDICI_DISPATCHER, {
    configurable: true,
    enumerable: false,
    get() {
      // undici installs a default dispatcher while it loads: let it, then replace it.
      delete (globalThis as Record<symbol, unknown>)[UNDICI_DISPATCHER];
      try {
        const undici = createRequire(import.meta.url)(undiciPath) as Undici;
        undici.setGlobalDispatcher(new undici.EnvHttpProxyAgent());
      } catch (err) {
        process.emitWarning(`hopscope preload: fetch will not use the proxy (${(err as Error).message})`);
      }
      return (globalThis as Record<symbol, unknown>)[UNDICI_DISPATCHER];
    },
  });
}

interface Undici {
  EnvHttpProxyAgent: new () => unknown;
  setGlobalDispatcher(dispatcher: unknown): void;
}

try {
  install();
} catch (err) {
  process.emitWarning(`hopscope preload failed, traffic goes direct: ${(err as Error).message}`);
}
