// A TCP forwarder that makes a loopback server look like a server across the internet: every byte
// it sends back arrives SHAPER_LATENCY_MS later, and each connection receives at most
// SHAPER_BYTES_PER_S (a token bucket whose burst is 10 ms worth of bytes). Requests pass unshaped. Used to serve the
// Replicate sandbox's output files the way a CDN would, so "download time" means something.
import net from 'node:net';

const [host, port] = process.env.SHAPER_TARGET.split(':');
const latencyMs = Number(process.env.SHAPER_LATENCY_MS ?? 0);
const rate = Number(process.env.SHAPER_BYTES_PER_S ?? 0) || Infinity; // bytes per second
const BURST = Number.isFinite(rate) ? Math.min(64 * 1024, Math.max(4096, rate / 100)) : 64 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const TICK_MS = 2;

const server = net.createServer((client) => {
  const upstream = net.connect(Number(port), host);
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  const queue = []; // { chunk, at }
  let queued = 0;
  let tokens = BURST;
  let last = performance.now();
  let ended = false;
  let timer;

  const pump = () => {
    timer = undefined;
    const t = performance.now();
    tokens = Math.min(BURST, tokens + ((t - last) / 1000) * rate);
    last = t;
    while (queue.length && queue[0].at <= t && tokens >= 1) {
      const head = queue[0];
      const n = Math.min(head.chunk.length, Math.floor(tokens));
      client.write(head.chunk.subarray(0, n));
      tokens -= n;
      queued -= n;
      if (n === head.chunk.length) queue.shift();
      else head.chunk = head.chunk.subarray(n);
    }
    if (queued < HIGH_WATER && upstream.isPaused()) upstream.resume();
    if (queue.length) {
      const wait = Math.max(TICK_MS, queue[0].at - t);
      timer = setTimeout(pump, wait);
    } else if (ended) client.end();
  };
  const schedule = () => {
    if (!timer) timer = setTimeout(pump, Math.max(0, queue[0].at - performance.now()));
  };

  upstream.on('data', (chunk) => {
    queue.push({ chunk, at: performance.now() + latencyMs });
    queued += chunk.length;
    if (queued >= HIGH_WATER) upstream.pause();
    schedule();
  });
  upstream.on('end', () => {
    ended = true;
    if (!queue.length && !timer) client.end();
  });
  const close = () => {
    clearTimeout(timer);
    client.destroy();
    upstream.destroy();
  };
  upstream.on('error', close);
  client.on('error', close);
  client.on('close', close);
  upstream.on('close', () => {
    if (!queue.length) client.end();
  });
});
server.listen(Number(process.env.SHAPER_PORT), '127.0.0.1');
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
