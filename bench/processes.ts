// What the benchmark scripts share: child processes (upstreams, proxies, load generators each in
// their own), hopscope started as users run it, progress lines, and /proc readings.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const work = mkdtempSync(join(tmpdir(), 'hopscope-bench-'));
const children: ChildProcess[] = [];

/** What a load generator reports: requests (or round trips) per second, latency percentiles in ms, errors. */
export interface Load {
  rps: number;
  p50: number;
  p99: number;
  mbps?: number;
  errors: number;
}

export function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

export interface NodeChild {
  child: ChildProcess;
  firstLine: string;
  /** The next stdout line after those already taken. */
  nextLine(): Promise<string>;
}

/** Starts a node script and resolves with its first stdout line. */
export async function startNode(args: string[], options: { tsx?: boolean } = {}): Promise<NodeChild> {
  const loader = options.tsx === false ? [] : ['--import', 'tsx'];
  const child = spawn(process.execPath, [...loader, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const queued: string[] = [];
  const waiting: Array<{ resolve(line: string): void; reject(err: Error): void }> = [];
  let exited: Error | null = null;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(line);
    else queued.push(line);
  });
  // 'close' comes after the last stdout line, 'exit' may come before it.
  child.once('close', (code) => {
    exited = new Error(`${args.join(' ')} exited with ${code}`);
    for (const waiter of waiting.splice(0)) waiter.reject(exited);
  });
  const nextLine = () =>
    queued.length > 0
      ? Promise.resolve(queued.shift()!)
      : exited
        ? Promise.reject(exited)
        : new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }));
  return { child, firstLine: await nextLine(), nextLine };
}

/** The proxy runs as users run it: compiled (from source through tsx it carries ~50 MiB more). */
export function buildHopscope(): void {
  progress('building hopscope (npm run build)');
  if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) {
    throw new Error('npm run build failed');
  }
}

/** hopscope with a capture file of its own, names under *.test mapped to loopback, trusting the fixture upstream CA. */
export async function startProxy(name: string, extra: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const { child, firstLine } = await startNode([
    'packages/core/dist/cli/main.js', 'start', '--listen', '127.0.0.1:0', '--no-ui', '--db', join(work, `${name}.sqlite`),
    '--resolve', '*.test=127.0.0.1', '--ca-dir', caDir, '--upstream-ca', join(root, 'test/fixtures/upstream-ca.pem'),
    '--quiet', ...extra,
  ], { tsx: false });
  const port = Number(/:(\d+)$/.exec(firstLine)?.[1]);
  if (!port) throw new Error(`unexpected first line from hopscope: ${firstLine}`);
  return { child, port };
}

/** The CA folder every proxy of a run shares, and its certificate (load generators trust it). */
export const caDir = join(work, 'ca');
export const hopscopeCaPath = join(caDir, 'ca.pem');

export function peakRssMiB(pid: number): number {
  return statusKiB(pid, 'VmHWM') / 1024;
}

export function rssMiB(pid: number): number {
  return statusKiB(pid, 'VmRSS') / 1024;
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function statusKiB(pid: number, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** Kills every child and removes the work folder (call once, at the end). */
export function cleanUp(): void {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
