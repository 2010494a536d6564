// `hopscope` command line: builds a config from the options and calls the library.
import { parseArgs } from 'node:util';
import { resolve as resolvePath } from 'node:path';
import { startHopscope, type Hopscope } from '../hopscope.js';
import { parseResolveRule } from '../net/resolve-map.js';
import { parseHostPort } from './listen-address.js';
import { startStatusLine } from './status-line.js';
import { loadOrCreateCa } from '../ca/ca-store.js';
import { trustInstructions } from '../ca/trust-instructions.js';

const USAGE = `hopscope — an intercepting debugging proxy

Usage:
  hopscope start [options]     run the proxy and record everything into a capture file
  hopscope ca [--pem] [--ca-dir DIR]
                               where the CA is and how to trust it (--pem: the certificate alone)
  hopscope har CAPTURE_FILE [-o OUT.har] [--filter EXPR]
                               export a capture as HAR 1.2 (hopscope har --help)
  hopscope run [options] -- COMMAND [ARGS…]
                               run COMMAND with its traffic recorded (hopscope run --help)

Options for start:
  --listen HOST:PORT           proxy address (default 127.0.0.1:8080; port 0 picks a free one)
  --db FILE                    capture file (default hopscope-<date>-<time>.sqlite here; :memory: allowed)
  --resolve HOST=ADDRESS       connect to ADDRESS instead of resolving HOST (HOST may be a glob
                               like *.test); repeatable
  --connect-timeout MS         upstream connect timeout (default 10000)
  --response-timeout MS        time an upstream may take to start answering (default 60000)
  --max-header-size BYTES      largest header block accepted (default 65536)
  --body-cap BYTES             body bytes stored per message (default 10485760)
  --ca-dir DIR                 folder of hopscope's root CA (default ./ca, created on first start)
  --no-intercept               relay every TLS tunnel blind (still records SNI and ALPN)
  --intercept GLOB             decrypt only hosts matching GLOB; repeatable
  --passthrough GLOB           never decrypt hosts matching GLOB; repeatable
  --upstream-ca FILE           also trust these PEM roots for upstreams; repeatable
  --upstream-insecure          do not verify upstream certificates
  --no-h2-tap                  relay HTTP/2 without decoding it (no exchanges or frames captured;
                               for measuring the decoder's cost)
  --keylog FILE                write TLS secrets of both legs for Wireshark (default $SSLKEYLOGFILE)
  --quiet                      no live status line
  -h, --help                   this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'start') return start(rest);
  if (command === 'ca') return caCommand(rest);
  if (command === 'har') return (await import('./har-command.js')).harCommand(rest);
  if (command === 'run') return (await import('./run-command.js')).runCommand(rest);
  process.stderr.write(`hopscope: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', default: '127.0.0.1:8080' },
      db: { type: 'string' },
      resolve: { type: 'string', multiple: true, default: [] },
      'connect-timeout': { type: 'string' },
      'response-timeout': { type: 'string' },
      'max-header-size': { type: 'string' },
      'body-cap': { type: 'string' },
      'ca-dir': { type: 'string', default: 'ca' },
      'no-intercept': { type: 'boolean', default: false },
      intercept: { type: 'string', multiple: true, default: [] },
      passthrough: { type: 'string', multiple: true, default: [] },
      'upstream-ca': { type: 'string', multiple: true, default: [] },
      'upstream-insecure': { type: 'boolean', default: false },
      'no-h2-tap': { type: 'boolean', default: false },
      keylog: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const listen = parseHostPort(values.listen, '--listen');
  const dbPath = values.db === ':memory:' ? ':memory:' : resolvePath(values.db ?? defaultCaptureName());
  const hopscope = await startHopscope({
    dbPath,
    listenHost: listen.host,
    listenPort: listen.port,
    resolve: values.resolve.map(parseResolveRule),
    connectTimeoutMs: optionalInt(values['connect-timeout'], '--connect-timeout'),
    responseTimeoutMs: optionalInt(values['response-timeout'], '--response-timeout'),
    maxHeaderBytes: optionalInt(values['max-header-size'], '--max-header-size'),
    bodyCaptureLimit: optionalInt(values['body-cap'], '--body-cap'),
    caDir: values['ca-dir'],
    intercept: !values['no-intercept'],
    interceptHosts: values.intercept,
    passthroughHosts: values.passthrough,
    upstreamCaFiles: values['upstream-ca'],
    upstreamInsecure: values['upstream-insecure'],
    h2Tap: !values['no-h2-tap'],
    ...(values.keylog ? { keylogFile: resolvePath(values.keylog) } : {}),
    onNotice: (message) => process.stderr.write(`${process.stdout.isTTY ? '\r\x1b[2K' : ''}hopscope: ${message}\n`),
  });
  process.stdout.write(`proxy: ${hopscope.proxyUrl}\nca: ${hopscope.caCertPath}\ndb: ${dbPath}\n`);
  const showStatus = !values.quiet && process.stdout.isTTY;
  const stopStatus = showStatus ? startStatusLine(hopscope, process.stdout) : () => {};
  await waitForSignal(hopscope, stopStatus);
  return 0;
}

async function caCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { pem: { type: 'boolean', default: false }, 'ca-dir': { type: 'string', default: 'ca' } },
    strict: true,
  });
  const ca = await loadOrCreateCa(resolvePath(values['ca-dir']), {
    warn: (message) => process.stderr.write(`hopscope: ${message}\n`),
  });
  process.stdout.write(values.pem ? ca.certPem : trustInstructions(ca.certPath));
  return 0;
}

function waitForSignal(hopscope: Hopscope, stopStatus: () => void): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`hopscope: ${signal} again, exiting without waiting\n`);
        process.exit(130);
      }
      stopping = true;
      stopStatus();
      hopscope.close().then(resolve, (err) => {
        process.stderr.write(`hopscope: error while stopping: ${(err as Error).message}\n`);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function optionalInt(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${option} wants a whole number, got "${text}"`);
  return n;
}

function defaultCaptureName(): string {
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-');
  return `hopscope-${stamp}.sqlite`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`hopscope: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
