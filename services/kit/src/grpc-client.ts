/* eslint-disable @typescript-eslint/no-explicit-any -- generated definitions are contravariant in their request types */
import * as grpc from '@grpc/grpc-js';
import { currentContext } from './context';
import { fromServiceError, isServiceError } from './grpc-errors';
import type { Metrics } from './metrics';

interface MethodDef<Req, Res> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (v: Req) => Buffer;
  responseDeserialize: (b: Buffer) => Res;
}

export interface CallOptions {
  /** Overrides the client's default timeout for this call (still capped by the caller's deadline). */
  timeoutMs?: number;
}

/** A client-streaming call: write with backpressure, then end() for the single response. */
export interface ClientStream<Req, Res> {
  write(request: Req): Promise<void>;
  end(): Promise<Res>;
  cancel(): void;
  /** The server's answer; it can come (as an error) before end(), e.g. a refusal after the first message. */
  readonly response: Promise<Res>;
}

type ClientMethod<D> =
  D extends MethodDef<infer Req, infer Res>
    ? D extends { requestStream: true }
      ? (opts?: CallOptions) => ClientStream<Req, Res>
      : (request: Req, opts?: CallOptions) => Promise<Res>
    : never;

export type GrpcClient<S> = { [K in keyof S]: ClientMethod<S[K]> } & {
  close(): void;
  waitForReady(timeoutMs: number): Promise<void>;
};

export interface GrpcClientOptions {
  /** Default timeout of every call, in ms. */
  timeoutMs?: number;
  metrics?: Metrics;
}

/** `host:port` becomes `dns:///host:port`, so every address the name resolves to is balanced. */
export function toTarget(address: string): string {
  return /^[a-z]+:/.test(address) && !/^[^/]+:\d+$/.test(address) ? address : `dns:///${address}`;
}

/**
 * An async client for a generated service definition. Every call gets a deadline (the
 * caller's, when it is sooner) and carries the request id; errors come back as AppError.
 */
export function createGrpcClient<S extends Record<string, MethodDef<any, any>>>(
  definition: S,
  address: string,
  options: GrpcClientOptions = {},
): GrpcClient<S> {
  const client = new grpc.Client(toTarget(address), grpc.credentials.createInsecure(), {
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 2_000,
  });
  const defaultTimeout = options.timeoutMs ?? 10_000;

  const callSetup = (opts?: CallOptions) => {
    const ctx = currentContext();
    const metadata = new grpc.Metadata();
    if (ctx) metadata.set('x-request-id', ctx.requestId);
    let deadline = Date.now() + (opts?.timeoutMs ?? defaultTimeout);
    if (ctx?.deadline && ctx.deadline < deadline) deadline = ctx.deadline;
    return { metadata, callOptions: { deadline } satisfies grpc.CallOptions };
  };
  const record = (method: string, err: grpc.ServiceError | null) =>
    options.metrics?.grpcClientHandled.inc({ method, code: grpc.status[err ? err.code : grpc.status.OK] });
  const rethrow = (err: unknown) => (isServiceError(err) ? fromServiceError(err) : err);

  const api: Record<string, unknown> = {
    close: () => client.close(),
    waitForReady: (timeoutMs: number) =>
      new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
      ),
  };
  for (const [name, def] of Object.entries(definition)) {
    const method = def.path.split('/').pop() ?? name;
    if (def.requestStream) {
      api[name] = (opts?: CallOptions) => {
        const { metadata, callOptions } = callSetup(opts);
        let settle!: { resolve: (v: unknown) => void; reject: (e: unknown) => void };
        const response = new Promise((resolve, reject) => (settle = { resolve, reject }));
        response.catch(() => undefined); // observed through end()
        const stream = client.makeClientStreamRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          metadata,
          callOptions,
          (err, value) => {
            record(method, err);
            if (err) settle.reject(rethrow(err));
            else settle.resolve(value);
          },
        );
        return {
          write: (request: unknown) =>
            new Promise<void>((resolve, reject) => {
              const ok = stream.write(request, (err: Error | null | undefined) =>
                err ? reject(rethrow(err)) : undefined,
              );
              if (ok) resolve();
              else stream.once('drain', () => resolve());
              // A finished call (error from the server) never drains: settle with its error.
              response.catch((err) => reject(err));
            }),
          end: () => {
            stream.end();
            return response;
          },
          cancel: () => stream.cancel(),
          response,
        } satisfies ClientStream<unknown, unknown>;
      };
    } else {
      api[name] = (request: unknown, opts?: CallOptions) => {
        const { metadata, callOptions } = callSetup(opts);
        return new Promise((resolve, reject) => {
          client.makeUnaryRequest(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request,
            metadata,
            callOptions,
            (err, value) => {
              record(method, err);
              if (err) reject(rethrow(err));
              else resolve(value);
            },
          );
        });
      };
    }
  }
  return api as GrpcClient<S>;
}
