// Starts hopscope in-process for a test, on a free loopback port with an in-memory capture and
// a throwaway CA shared by the test file's process (never the user's ca/).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHopscope, type Hopscope, type HopscopeOptions } from '../../packages/core/src/hopscope.js';

export interface TestProxy extends Hopscope {
  host: string;
  port: number;
  notices: string[];
}

let caDir: string | null = null;

/** The CA folder every proxy of this test process shares (created on first use). */
export function testCaDir(): string {
  if (!caDir) {
    const dir = mkdtempSync(join(tmpdir(), 'hopscope-test-ca-'));
    caDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return caDir;
}

export async function startTestProxy(options: Partial<HopscopeOptions> = {}): Promise<TestProxy> {
  const notices: string[] = [];
  const hopscope = await startHopscope({
    dbPath: ':memory:',
    listenHost: '127.0.0.1',
    listenPort: 0,
    resolve: [{ pattern: '*.test', address: '127.0.0.1' }],
    caDir: testCaDir(),
    keylogFile: null,
    onNotice: (message) => notices.push(message),
    ...options,
  });
  return Object.assign(hopscope, { host: '127.0.0.1', port: hopscope.address.port, notices });
}
