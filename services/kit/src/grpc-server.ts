/* eslint-disable @typescript-eslint/no-explicit-any -- generated definitions are contravariant in their request types */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { runWithContext, requestIdFrom } from './context';
import { asAppError, toGrpcStatus } from './grpc-errors';
import { Errors } from './errors';
import type { Metrics } from './metrics';

/** The shape ts-proto generates for each method of a service definition. */
interface MethodDef<Req, Res> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize: (b: Buffer) => Req;
  responseSerialize: (v: Res) => Buffer;
}

export interface HandlerContext {
  metadata: grpc.Metadata;
  /** Aborted when the caller goes away or its deadline passes. */
  signal: AbortSignal;
}

type Handler<D> =
  D extends MethodDef<infer Req, infer Res>
    ? D extends { requestStream: true }
      ? (requests: AsyncIterable<Req>, ctx: HandlerContext) => Promise<Res>
      : (request: Req, ctx: HandlerContext) => Promise<Res>
    : never;

/** Async handlers for a generated service: every method, so a forgotten RPC fails to compile. */
export type AsyncService<S> = { [K in keyof S]: Handler<S[K]> };

export interface ServiceBinding {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/**
 * Turns async handlers into grpc-js handlers, adding in one place what every call needs:
 * the request id and deadline in context, one log line, RED metrics and error → status mapping.
 */
export function implement<S extends Record<string, MethodDef<any, any>>>(
  definition: S,
  handlers: AsyncService<S>,
  deps: { logger: Logger; metrics: Metrics },
): ServiceBinding {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(definition)) {
    const method = def.path.split('/').pop() ?? name;
    const handler = handlers[name as keyof S] as
      ((input: unknown, ctx: HandlerContext) => Promise<unknown>) | undefined;
    // Only a test double can leave one out (the type requires all); grpc-js answers it UNIMPLEMENTED.
    if (!handler) continue;
    const run = async (
      call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>,
      input: unknown,
    ) => {
      const started = process.hrtime.bigint();
      const deadline = call.getDeadline();
      const deadlineMs =
        deadline instanceof Date
          ? deadline.getTime()
          : Number.isFinite(deadline)
            ? Number(deadline)
            : undefined;
      const requestId = requestIdFrom(call.metadata.get('x-request-id')[0]);
      const controller = new AbortController();
      // grpc-js emits 'cancelled' after every call, finished ones too: only a call still running
      // is aborted (and only then is an error with its stack trace built).
      let running = true;
      call.on('cancelled', () => {
        if (running) controller.abort(Errors.timeout('caller'));
      });
      return runWithContext({ requestId, deadline: deadlineMs }, async () => {
        let outcome: { code: grpc.status; value?: unknown; error?: ReturnType<typeof toGrpcStatus> };
        try {
          outcome = {
            code: grpc.status.OK,
            value: await handler(input, { metadata: call.metadata, signal: controller.signal }),
          };
        } catch (err) {
          const status = toGrpcStatus(err);
          outcome = { code: status.code, error: status };
          const appError = asAppError(err);
          if (appError.code === 'internal') deps.logger.error({ err, method }, 'unhandled error');
        }
        running = false;
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        deps.metrics.grpcServerHandled.inc({ method, code: grpc.status[outcome.code] });
        deps.metrics.grpcServerDuration.observe({ method }, seconds);
        deps.logger.info(
          {
            method,
            code: grpc.status[outcome.code],
            duration_ms: Math.round(seconds * 1000),
            ...(outcome.error ? { detail: outcome.error.details } : {}),
          },
          'rpc',
        );
        return outcome;
      });
    };
    if (def.requestStream) {
      implementation[name] = (
        call: grpc.ServerReadableStream<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        void run(call, call).then((o) => (o.error ? callback(o.error) : callback(null, o.value)));
      };
    } else {
      implementation[name] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        void run(call, call.request).then((o) => (o.error ? callback(o.error) : callback(null, o.value)));
      };
    }
  }
  return { definition: definition as unknown as grpc.ServiceDefinition, implementation };
}

export interface GrpcServerOptions {
  /** Fully qualified service names reported by grpc.health.v1, e.g. atelier.billing.v1.BillingService. */
  serviceNames: string[];
  services: ServiceBinding[];
  host: string;
  port: number;
  logger: Logger;
  /** Throws while a dependency (Postgres, Redis, …) does not answer. */
  readiness: () => Promise<void>;
  readinessIntervalMs?: number;
}

export interface RunningGrpcServer {
  port: number;
  address: string;
  health: HealthImplementation;
  /** Reports NOT_SERVING, lets calls in flight finish (up to graceMs), then stops. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    // Replicate webhooks (a training's logs) reach 10 MB; they arrive as one message.
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    // Clients re-resolve DNS only when a connection ends: ageing connections out lets callers
    // find replicas added after they connected. The grace lets long uploads finish.
    'grpc.max_connection_age_ms': 5 * 60_000,
    'grpc.max_connection_age_grace_ms': 5 * 60_000,
  });
  for (const { definition, implementation } of opts.services) server.addService(definition, implementation);

  // NOT_SERVING until the dependencies answer; re-checked so an outage shows up in health.
  const names = ['', ...opts.serviceNames];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, 'NOT_SERVING' as const])));
  health.addToServer(server);
  let stopping = false;
  let lastReady: boolean | undefined;
  const check = async () => {
    let ready = false;
    try {
      await opts.readiness();
      ready = true;
    } catch (err) {
      if (lastReady !== false) opts.logger.warn({ err: (err as Error).message }, 'dependencies not ready');
    }
    if (stopping) return;
    if (ready !== lastReady && ready) opts.logger.info('dependencies ready: SERVING');
    lastReady = ready;
    for (const n of names) health.setStatus(n, ready ? 'SERVING' : 'NOT_SERVING');
  };
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  await check();
  const timer = setInterval(() => void check(), opts.readinessIntervalMs ?? 2_000);
  timer.unref();

  return {
    port,
    address: `${opts.host}:${port}`,
    health,
    async shutdown(graceMs = 10_000) {
      stopping = true;
      clearInterval(timer);
      for (const n of names) health.setStatus(n, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
