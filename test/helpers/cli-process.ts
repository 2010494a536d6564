// Runs the real `hopscope` command line (from source) as a child process for a test.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

const mainScript = fileURLToPath(new URL('../../packages/core/src/cli/main.ts', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  /** Lines printed on stdout so far. */
  lines: string[];
  /** Resolves with the value of the first `name: value` line. */
  line(name: string): Promise<string>;
  stderr(): string;
  /** Sends a signal (unless the process already exited) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process exits by itself. */
  exited: Promise<number | null>;
}

/** `wrap` turns the command line into another one that runs it, e.g. inside `unshare`. */
export function runCli(args: string[], options: { wrap?: (command: string[]) => string[] } = {}): CliProcess {
  const command = [process.execPath, '--import', 'tsx', mainScript, ...args];
  const [file, ...rest] = options.wrap ? options.wrap(command) : command;
  const child = spawn(file, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    lines,
    stderr: () => stderr,
    async line(name) {
      for (;;) {
        const found = lines.find((l) => l.startsWith(`${name}: `));
        if (found) return found.slice(name.length + 2);
        if (child.exitCode !== null) throw new Error(`hopscope exited (${child.exitCode}) before printing "${name}:"; stderr: ${stderr}`);
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), exited]);
      }
    },
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Peak resident memory of a live process in bytes (Linux: VmHWM). */
export async function peakRss(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error('no VmHWM in /proc status');
  return Number(kb[1]) * 1024;
}
