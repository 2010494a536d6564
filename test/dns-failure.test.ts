// An unresolvable upstream name: the client gets a 502 naming the host, the capture says "dns".
// Runs in a network namespace of its own so the failing lookup never leaves the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('unresolvable host: 502 naming the host, captured as a DNS failure', { timeout: 30_000 }, async () => {
  const scenario = fileURLToPath(new URL('./helpers/dns-scenario.ts', import.meta.url));
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      'unshare',
      ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" --import tsx "${scenario}"`],
      { timeout: 25_000, encoding: 'utf8' },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  const seen = JSON.parse(output);
  assert.equal(seen.status, 502);
  assert.match(seen.body, /could not resolve host no-such-host\.invalid/);
  assert.equal(seen.exchangeError.reason, 'dns');
  assert.match(seen.connectAnswer, /^HTTP\/1\.1 502 /);
  assert.match(seen.connectAnswer, /could not resolve host no-such-host\.invalid/);
  assert.equal(seen.connectionError.reason, 'dns');
});
