// Binding a listening socket: resolves with the address actually bound (port 0 picks one), or
// rejects with the bind error (EADDRINUSE, EACCES) instead of letting it reach the process.
import type { AddressInfo, Server } from 'node:net';

export function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
