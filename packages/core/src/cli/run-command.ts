// `hopscope run [options] -- COMMAND ARGS…`: records everything COMMAND sends over the network.
// Starts hopscope on a free loopback port without the UI, runs COMMAND with an environment that
// routes its clients through it (run-environment.ts), then writes the HAR, prints a summary and
// checks the host allow-list. Exits with COMMAND's status.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, formatUnexpected, summarizeCapture } from '../export/capture-summary.js';
import { exportHarFile } from '../export/har-file.js';
import { startHopscope } from '../hopscope.js';
import { preloadImportUrl } from '../preload/preload-path.js';
import { runEnvironment } from '../preload/run-environment.js';
import { PROXY_OPTIONS, PROXY_OPTIONS_HELP, proxyOptionsFrom } from './proxy-options.js';
import { openStore, readLastIds } from '../store/open-store.js';

/** Exit status when COMMAND succeeded but sent something to a host outside the allow-list. */
export const UNEXPECTED_HOST_EXIT = 3;

export const RUN_USAGE = `Usage: hopscope run [options] -- COMMAND [ARGS…]

Runs COMMAND with its HTTP(S) traffic going through hopscope, and exits with its status.
  --har FILE                   write this run's exchanges as HAR 1.2
  --db FILE                    keep the capture file (appended to if it exists; default: a
                               temporary file, removed afterwards)
  --fail-on-unexpected-host GLOB
                               exit ${UNEXPECTED_HOST_EXIT} (when COMMAND itself succeeded) and list the requests if any
                               went to a host matching none of the GLOBs; repeatable
  --no-proxy LIST              NO_PROXY for COMMAND (default empty: everything, loopback too,
                               goes through hopscope)
  --quiet                      no summary (offending hosts are still listed)
${PROXY_OPTIONS_HELP}COMMAND gets HTTP_PROXY/HTTPS_PROXY (both cases), NO_PROXY, NODE_EXTRA_CA_CERTS, SSL_CERT_FILE,
REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO and a NODE_OPTIONS preload for Node's http,
https and fetch.
`;

function parseRunArgs(args: string[]) {
  return parseArgs({
    args,
    options: {
      har: { type: 'string' },
      db: { type: 'string' },
      'fail-on-unexpected-host': { type: 'string', multiple: true },
      'no-proxy': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      ...PROXY_OPTIONS,
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
}

export async function runCommand(args: string[]): Promise<number> {
  const split = args.indexOf('--');
  const values = parseRunArgs(split < 0 ? args : args.slice(0, split));
  if (values.help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  const command = split < 0 ? [] : args.slice(split + 1);
  if (command.length === 0) {
    process.stderr.write(`hopscope run: no command given after "--"\n\n${RUN_USAGE}`);
    return 2;
  }
  const notice = (message: string) => process.stderr.write(`hopscope: ${message}\n`);
  const workDir = mkdtempSync(join(tmpdir(), 'hopscope-run-'));
  try {
    const dbPath = values.db === undefined ? join(workDir, 'capture.sqlite') : resolvePath(values.db);
    const hopscope = await startHopscope({
      dbPath,
      listenHost: '127.0.0.1',
      listenPort: 0,
      ...proxyOptionsFrom(values),
      onNotice: notice,
    });
    // What an earlier run left in the file is not this run's: HAR and summary start after it.
    const before = readLastIds(hopscope.db);
    let status: number;
    try {
      const env = runEnvironment({
        base: process.env,
        proxyUrl: hopscope.proxyUrl,
        caCertPath: hopscope.caCertPath,
        workDir,
        preloadUrl: await preloadImportUrl(),
        noProxy: values['no-proxy'],
      });
      status = await runChild(command, env);
    } finally {
      await hopscope.close();
    }
    return await report(dbPath, before, status, {
      har: values.har === undefined ? null : resolvePath(values.har),
      keptDb: values.db === undefined ? null : dbPath,
      allowedHosts: values['fail-on-unexpected-host'] ?? null,
      quiet: values.quiet,
    });
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

interface ReportOptions {
  har: string | null;
  keptDb: string | null;
  allowedHosts: string[] | null;
  quiet: boolean;
}

async function report(dbPath: string, before: { exchangeId: number; connId: number }, status: number, options: ReportOptions): Promise<number> {
  const lines: string[] = [];
  if (options.har) {
    const { entries } = await exportHarFile(dbPath, options.har, { filter: { afterId: before.exchangeId } });
    lines.push(`hopscope: HAR: ${options.har} (${entries} entries)`);
  }
  if (options.keptDb) lines.push(`hopscope: capture: ${options.keptDb}`);
  const { db } = openStore(dbPath, { readonly: true });
  let summary;
  try {
    summary = summarizeCapture(db, {
      afterExchangeId: before.exchangeId,
      afterConnectionId: before.connId,
      ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
    });
  } finally {
    db.close();
  }
  const unexpected = summary.unexpected ?? [];
  if (!options.quiet) {
    process.stderr.write(formatSummary(summary, options.allowedHosts ?? []));
    if (lines.length > 0) process.stderr.write(`${lines.join('\n')}\n`);
  } else {
    process.stderr.write(formatUnexpected(summary, options.allowedHosts ?? []));
  }
  if (status !== 0) return status;
  return unexpected.length > 0 ? UNEXPECTED_HOST_EXIT : 0;
}

/** Runs the command with inherited stdio; resolves with its exit status (128+n for signal n). */
function runChild(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
    // Like npm: pass termination signals on and let the command decide; we exit after it does.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    const done = (status: number) => {
      for (const s of signals) process.off(s, forward);
      resolve(status);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`hopscope run: cannot run ${command[0]}: ${err.message}\n`);
      done(err.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
  });
}

