// `hopscope start`: the proxy plus the inspector, recording into a capture file until a signal.
import { parseArgs } from 'node:util';
import { resolve as resolvePath } from 'node:path';
import { startHopscope } from '../hopscope.js';
import { startInspector, type Inspector } from '../inspector/start-inspector.js';
import { parseHostPort } from './listen-address.js';
import { ACCESS_OPTIONS, ACCESS_OPTIONS_HELP, accessOptionsFrom, PROXY_OPTIONS, PROXY_OPTIONS_HELP, proxyOptionsFrom } from './proxy-options.js';
import { assertListenAllowed } from '../net/proxy-auth-gate.js';
import { startStatusLine } from './status-line.js';
import { REVERSE_OPTIONS, REVERSE_OPTIONS_HELP, reverseOptionsFrom } from './proxy-options.js';

export const START_USAGE = `Usage: hopscope start [options]

Runs the proxy and the inspector, recording everything into a capture file. Prints
"proxy: URL", then "reverse: URL" (with --reverse), "proxy-tls: URL" (with --listen-tls) and
"socks: URL" (with --socks), then "ui: URL", "ca: PATH" and "db: PATH" lines, each on its own
line, then a live status line on a terminal.
  --listen HOST:PORT           proxy address (default 127.0.0.1:8080; port 0 picks a free one)
  --ui HOST:PORT               inspector address (default 127.0.0.1:8081; port 0 picks a free one)
  --no-ui                      no inspector (headless recording, e.g. in CI)
  --db FILE                    capture file (default hopscope-<date>-<time>.sqlite here; :memory: allowed)
${ACCESS_OPTIONS_HELP}${PROXY_OPTIONS_HELP}${REVERSE_OPTIONS_HELP}  --quiet                      no live status line
`;

export async function startCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', default: '127.0.0.1:8080' },
      ui: { type: 'string', default: '127.0.0.1:8081' },
      'no-ui': { type: 'boolean', default: false },
      db: { type: 'string' },
      ...ACCESS_OPTIONS,
      ...PROXY_OPTIONS,
      ...REVERSE_OPTIONS,
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(START_USAGE);
    return 0;
  }
  const listen = parseHostPort(values.listen, '--listen');
  const ui = values['no-ui'] ? null : parseHostPort(values.ui, '--ui');
  const access = accessOptionsFrom(values);
  // Before anything is created: a proxy reachable by others needs credentials (or an explicit yes).
  assertListenAllowed(listen.host, access);
  const dbPath = values.db === ':memory:' ? ':memory:' : resolvePath(values.db ?? defaultCaptureName());
  const hopscope = await startHopscope({
    dbPath,
    listenHost: listen.host,
    listenPort: listen.port,
    ...access,
    ...proxyOptionsFrom(values),
    ...reverseOptionsFrom(values),
    onNotice: (message) => process.stderr.write(`${process.stdout.isTTY ? '\r\x1b[2K' : ''}hopscope: ${message}\n`),
  });
  let inspector: Inspector | null = null;
  try {
    inspector = ui
      ? await startInspector({
          db: hopscope.db,
          sink: hopscope.sink,
          bus: hopscope.bus,
          host: ui.host,
          port: ui.port,
          proxyUrl: hopscope.proxyUrl,
          caPath: hopscope.caCertPath,
          proxyAuth: access.proxyAuth,
        })
      : null;
  } catch (err) {
    await hopscope.close();
    throw new Error(`cannot start the inspector on ${values.ui}: ${(err as Error).message} (use --ui HOST:PORT or --no-ui)`);
  }
  const lines = [
    `proxy: ${hopscope.proxyUrl}`,
    ...(hopscope.reverseUrl ? [`reverse: ${hopscope.reverseUrl}`] : []),
    ...(hopscope.proxyTlsUrl ? [`proxy-tls: ${hopscope.proxyTlsUrl}`] : []),
    ...(hopscope.socksUrl ? [`socks: ${hopscope.socksUrl}`] : []),
    ...(inspector ? [`ui: ${inspector.url}`] : []),
    `ca: ${hopscope.caCertPath}`,
    `db: ${dbPath}`,
  ];
  // Listen for signals before announcing the addresses: whoever reads them may stop us at once.
  const signalled = waitForSignal();
  process.stdout.write(`${lines.join('\n')}\n`);
  const stopStatus = !values.quiet && process.stdout.isTTY ? startStatusLine(hopscope, process.stdout) : () => {};
  await signalled;
  stopStatus();
  await inspector?.close();
  await hopscope.close();
  return 0;
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`hopscope: ${signal} again, exiting without waiting\n`);
        process.exit(130);
      }
      stopping = true;
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function defaultCaptureName(): string {
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-');
  return `hopscope-${stamp}.sqlite`;
}

