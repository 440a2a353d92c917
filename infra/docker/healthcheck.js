'use strict';
/**
 * Container healthcheck of the Atelier image: exits 0 when the process in this container is ready
 * for traffic, 1 otherwise, printing one line either way (docker keeps it in `docker inspect`).
 *
 * - billing, imager, trainer, inferencer: grpc.health.v1 Check for the server as a whole ('')
 *   must answer SERVING. The kit answers NOT_SERVING until the service's dependencies respond
 *   (Postgres, Redis, the bucket) and again while draining on SIGTERM, so an unhealthy container
 *   is one that cannot do its work.
 * - gateway: GET /readyz must answer 200 (every downstream health check, Redis).
 *
 * It reuses the kit's compiled health client (@grpc/grpc-js + grpc-health-check, both already
 * production dependencies). Environment: SERVICE, GRPC_PORT / GRPC_HOST or HTTP_PORT / HTTP_HOST
 * (the same variables the process reads), HEALTHCHECK_TIMEOUT_MS (default 3000).
 */
const http = require('node:http');
const path = require('node:path');

const GRPC_DEFAULT_PORTS = { billing: 50051, imager: 50052, trainer: 50053, inferencer: 50054 };
const service = process.env.SERVICE || '';
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS || 3000);

function finish(ok, message) {
  (ok ? process.stdout : process.stderr).write(`${service || 'healthcheck'}: ${message}\n`);
  process.exit(ok ? 0 : 1);
}

/** A process listening on every interface is asked on loopback; a specific address as is. */
function localHost(configured) {
  if (!configured || configured === '0.0.0.0' || configured === '::' || configured === '[::]')
    return '127.0.0.1';
  return configured;
}

function checkGateway() {
  const port = Number(process.env.HTTP_PORT || 8080);
  const host = localHost(process.env.HTTP_HOST);
  const req = http.get({ host, port, path: '/readyz', timeout: timeoutMs }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => (body += chunk));
    res.on('end', () =>
      finish(res.statusCode === 200, `GET /readyz ${res.statusCode} ${body.slice(0, 300)}`),
    );
  });
  req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  req.on('error', (err) => finish(false, `GET http://${host}:${port}/readyz failed: ${err.message}`));
}

async function checkGrpc() {
  const port = Number(process.env.GRPC_PORT || GRPC_DEFAULT_PORTS[service]);
  const host = localHost(process.env.GRPC_HOST);
  const { createHealthChecker } = require(
    path.join(__dirname, '..', '..', 'services', 'kit', 'dist', 'health-client.js'),
  );
  const checker = createHealthChecker(`${host}:${port}`);
  try {
    const status = await checker.check('', timeoutMs);
    finish(status === 'SERVING', `grpc.health.v1 ${host}:${port} ${status}`);
  } finally {
    checker.close();
  }
}

if (service === 'gateway') {
  checkGateway();
} else if (Object.prototype.hasOwnProperty.call(GRPC_DEFAULT_PORTS, service)) {
  checkGrpc().catch((err) => finish(false, `health check failed: ${err && err.message ? err.message : err}`));
} else {
  finish(
    false,
    `SERVICE must be one of gateway, ${Object.keys(GRPC_DEFAULT_PORTS).join(', ')} (got '${service}')`,
  );
}
