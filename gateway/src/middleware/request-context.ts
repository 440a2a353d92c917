import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';
import { requestIdFrom, runWithContext } from '@atelier/kit';

/**
 * Gives every request an id (a sane incoming X-Request-Id is kept), echoes it, runs the rest of
 * the chain in a context the gRPC clients read it from, and logs one line when the response ends.
 */
export function requestContext(
  logger: Logger,
  metrics: { requests: Counter<'route' | 'method' | 'status'>; duration: Histogram<'route' | 'method'> },
) {
  return (req: Request, res: Response, next: NextFunction) => {
    const requestId = requestIdFrom(req.get('x-request-id'));
    const started = process.hrtime.bigint();
    req.requestId = requestId;
    // The logger's mixin adds request_id from the call context, which the rest of the chain runs in.
    req.log = logger;
    res.setHeader('X-Request-Id', requestId);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The route template, never the raw path: ids in labels would make series unbounded.
      // Express types req.route as any: read only its template.
      const template = (req.route as { path?: string } | undefined)?.path;
      const route = template ? `${req.baseUrl}${template}` : 'unmatched';
      metrics.requests.inc({ route, method: req.method, status: String(res.statusCode) });
      metrics.duration.observe({ route, method: req.method }, seconds);
      logger.info(
        {
          request_id: requestId,
          method: req.method,
          route,
          status: res.statusCode,
          duration_ms: Math.round(seconds * 1000),
        },
        'http',
      );
    });
    runWithContext({ requestId }, next);
  };
}
