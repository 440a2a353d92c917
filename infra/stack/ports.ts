import net from 'node:net';

/** Asks the kernel for an unused TCP port on 127.0.0.1. Another process can still take it before
 * the caller binds it, so callers that pick a port this way retry on EADDRINUSE. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
