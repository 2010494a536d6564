// `hopscope har CAPTURE_FILE [-o OUT.har] [--filter EXPR]`: a capture file as HAR 1.2.
import { parseArgs } from 'node:util';
import { resolve as resolvePath } from 'node:path';
import { exportHarFile } from '../export/har-file.js';
import { matchesFilter, parseFilter } from '../filter/index.js';
import { decodedBody } from '../store/decoded-body.js';
import type { ExchangeDetail } from '../store/row-types.js';

export const HAR_USAGE = `Usage: hopscope har CAPTURE_FILE [-o OUT.har] [--filter EXPR]

Writes the capture as HAR 1.2 (to stdout without -o). The capture may still be recording.
  -o, --output FILE            where to write the HAR (replaced if it exists)
  --filter EXPR                only the exchanges matching EXPR (the inspector's filter language)
`;

export async function harCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      output: { type: 'string', short: 'o' },
      filter: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HAR_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`hopscope har: expected one capture file, got ${positionals.length}\n\n${HAR_USAGE}`);
    return 2;
  }
  const predicate = values.filter === undefined ? undefined : compileFilter(values.filter);
  if (predicate === null) return 2;
  const capture = resolvePath(positionals[0]);
  const output = values.output === undefined || values.output === '-' ? process.stdout : resolvePath(values.output);
  if (output === process.stdout) process.stdout.on('error', onStdoutError);
  const { entries } = await exportHarFile(capture, output, { predicate });
  if (typeof output === 'string') process.stderr.write(`hopscope: wrote ${entries} entries to ${output}\n`);
  return 0;
}

/** The filter as a predicate, or null after explaining what is wrong with it. */
function compileFilter(source: string): ((exchange: ExchangeDetail) => boolean) | null {
  const parsed = parseFilter(source);
  if (!parsed.ok) {
    const { error } = parsed;
    const marker = `${' '.repeat(error.start)}${'^'.repeat(Math.max(1, error.end - error.start))}`;
    process.stderr.write(`hopscope har: bad --filter: ${error.message}\n  ${source}\n  ${marker}\n`);
    return null;
  }
  const expr = parsed.expr;
  return (exchange) => matchesFilter(expr, exchange, decodedBody);
}

/** A reader that went away (`hopscope har x | head`) is not an error worth a stack trace. */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`hopscope har: cannot write to stdout: ${err.message}\n`);
  process.exit(1);
}
