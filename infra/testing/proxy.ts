import net from 'node:net';
import { listen } from '@atelier/kit';

export interface TcpProxy {
  /** host:port to connect to instead of the target. */
  address: string;
  port: number;
  /** Refuse new connections and cut every open one: the target looks down. */
  down(): void;
  /** Forward again. */
  up(): void;
  close(): Promise<void>;
}

/**
 * A TCP forwarder in front of a real server, so a test can make Postgres, Redis or the bucket
 * disappear and come back without stopping the server other test files share.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  let isDown = false;
  const server = net.createServer((client) => {
    if (isDown) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  const port = await listen(server, 0, '127.0.0.1');
  return {
    address: `127.0.0.1:${port}`,
    port,
    down() {
      isDown = true;
      for (const socket of open) socket.destroy();
      open.clear();
    },
    up() {
      isDown = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The same URL pointed at the proxy. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
