import type { AddressInfo, Server } from 'node:net';

/**
 * Binds a server (HTTP or plain TCP) and resolves with its port, or rejects when the bind fails
 * (EADDRINUSE, EACCES). `server.listen(port, host, callback)` alone reports a failed bind only as
 * an 'error' event: the caller's promise never settles and the process dies of an uncaught error.
 */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => reject(err);
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
