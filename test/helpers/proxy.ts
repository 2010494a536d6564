// Starts hopscope in-process for a test, on a free loopback port with an in-memory capture.
import { startHopscope, type Hopscope, type HopscopeOptions } from '../../packages/core/src/hopscope.js';

export interface TestProxy extends Hopscope {
  host: string;
  port: number;
}

export async function startTestProxy(options: Partial<HopscopeOptions> = {}): Promise<TestProxy> {
  const hopscope = await startHopscope({
    dbPath: ':memory:',
    listenHost: '127.0.0.1',
    listenPort: 0,
    resolve: [{ pattern: '*.test', address: '127.0.0.1' }],
    ...options,
  });
  return Object.assign(hopscope, { host: '127.0.0.1', port: hopscope.address.port });
}
