// A front door that cannot open (its port is taken) fails the start with a clear error, and
// whatever had opened already is closed again: no port left listening, the capture file unlocked.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHopscope } from '../packages/core/src/hopscope.js';
import { parseReverseRule } from '../packages/core/src/reverse/reverse-rules.js';
import { testCaDir } from './helpers/proxy.js';

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('a front door that cannot open', { timeout: 20_000 }, () => {
  let dir: string;
  let taken: net.Server;
  let takenPort: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hopscope-startup-'));
    taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as net.AddressInfo).port;
  });

  after(async () => {
    await new Promise((resolve) => taken.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const door of ['socksListen', 'listenTls', 'reverse'] as const) {
    test(`${door} on a taken port: the start fails, the proxy port is closed again and the capture file is free`, async () => {
      const dbPath = join(dir, `${door}.sqlite`);
      const proxyPort = await freePort();
      const reversePort = door === 'reverse' ? takenPort : await freePort();
      const reverse = { rules: [parseReverseRule('http://127.0.0.1:1')], listenHost: '127.0.0.1', listenPort: reversePort, tls: false, hostHeader: 'upstream' as const };
      // The reverse listener opens before the SOCKS and HTTPS proxy ports: it must be closed again too.
      const frontDoor = door === 'reverse' ? { reverse } : { reverse, [door]: { host: '127.0.0.1', port: takenPort } };
      await assert.rejects(
        startHopscope({ dbPath, listenHost: '127.0.0.1', listenPort: proxyPort, caDir: testCaDir(), keylogFile: null, ...frontDoor }),
        (err: Error) => /EADDRINUSE|address already in use/i.test(err.message),
      );
      assert.equal(await connectOutcome(proxyPort), 'ECONNREFUSED', 'the proxy port that had opened is closed again');
      if (door !== 'reverse') assert.equal(await connectOutcome(reversePort), 'ECONNREFUSED', 'so is the reverse port');
      const again = await startHopscope({ dbPath, listenHost: '127.0.0.1', listenPort: 0, caDir: testCaDir(), keylogFile: null });
      await again.close();
    });
  }
});
