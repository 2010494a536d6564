// `hopscope` command line: dispatches to the commands, each a thin layer over the library.
import { parseArgs } from 'node:util';
import { resolve as resolvePath } from 'node:path';
import { loadOrCreateCa } from '../ca/ca-store.js';
import { trustInstructions } from '../ca/trust-instructions.js';
import { startCommand } from './start-command.js';

const USAGE = `hopscope — an intercepting debugging proxy

Usage:
  hopscope start [options]     run the proxy and the inspector, recording into a capture file
                               (hopscope start --help)
  hopscope ca [--pem] [--ca-dir DIR]
                               where the CA is and how to trust it (--pem: the certificate alone)
  hopscope har CAPTURE_FILE [-o OUT.har] [--filter EXPR]
                               export a capture as HAR 1.2 (hopscope har --help)
  hopscope run [options] -- COMMAND [ARGS…]
                               run COMMAND with its traffic recorded (hopscope run --help)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'start') return startCommand(rest);
  if (command === 'ca') return caCommand(rest);
  if (command === 'har') return (await import('./har-command.js')).harCommand(rest);
  if (command === 'run') return (await import('./run-command.js')).runCommand(rest);
  process.stderr.write(`hopscope: unknown command "${command}"\n\n${USAGE}`);
  return 2;
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`hopscope: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
