import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { ZodType } from 'zod';
import { Errors } from '@atelier/kit';
import { ProblemSchema, z } from '../openapi/registry';
import { idempotent, resourceId, type StoredResponse } from '../middleware/idempotency';
import { withLock } from '../middleware/lock';
import type { RequestKind } from '../middleware/rate-limit';
import { checkRawQuery, checkTextTree } from '../middleware/text';
import type { GatewayConfig } from '../config';
import type { GatewayDeps } from '../deps';

/** Kept on top of a request's deadline for locks and in-flight markers: the answer still has to travel. */
const DEADLINE_MARGIN_MS = 2_000;

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** The digest of a body the handler streamed itself, for its Idempotency-Key (see `bodyDigest`). */
  bodyDigest?: string;
}

export interface RouteContext<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  /** Set on authenticated routes. */
  accountId: string;
  /**
   * The id of the resource this request creates: derived from the account and its
   * Idempotency-Key when there is one (a retry names the same resource), random otherwise.
   */
  newId: (kind: string) => string;
  /**
   * The route's deadline (`RouteSpec.deadlineMs`), for its calls' `timeoutMs`: its lock and
   * Idempotency-Key marker are held this long plus a margin, so they outlive every call it makes.
   */
  deadlineMs: number;
}

/**
 * One route: its HTTP shape (validated here and published in the OpenAPI document from the
 * same zod schemas), its cross-cutting needs (auth, lock, idempotency) and a thin handler.
 */
export interface RouteSpec<P extends ZodType, Q extends ZodType, B extends ZodType> {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI style, e.g. /api/v1/payments/{payment_id}. */
  path: string;
  summary: string;
  tags: string[];
  auth: boolean;
  params?: P;
  query?: Q;
  /** A zod schema for JSON bodies; 'multipart' and 'raw' bodies are read by the handler. */
  body?: B | 'multipart' | 'raw';
  idempotent?: boolean;
  /**
   * For an idempotent route whose handler streams the body itself (multipart): reads a repeat's
   * body into the digest the first attempt's reply carried, so the same key with another body
   * is 422 there too.
   */
  bodyDigest?: (req: Request, config: GatewayConfig) => Promise<string>;
  /**
   * How long the request may take: its calls' deadline (the handler gets it as `ctx.deadlineMs`);
   * locks and Idempotency-Key markers live no longer than this plus a margin. Default
   * GRPC_TIMEOUT_MS.
   */
  deadlineMs?: (req: Request, config: GatewayConfig) => number;
  /**
   * The resource to lock while the handler runs, e.g. `payment:<id>`, taken only once `owner`
   * has shown the resource is the caller's (it throws otherwise), so nobody can make another
   * account's requests answer 409 by knowing an id.
   */
  lock?: {
    resource: (params: z.infer<P>) => string;
    owner: (ctx: { accountId: string; params: z.infer<P> }, deps: GatewayDeps) => Promise<unknown>;
  };
  /** Its own answers; an error status without a schema is documented as the route's error body. */
  responses: Record<number, { description: string; schema?: ZodType }>;
  /**
   * How this route's errors are written when not as problem+json (the A1111-compatible routes
   * answer A1111's JSON shape, and turn every 400 into FastAPI's 422: `never` lists such statuses).
   */
  errors?: { contentType: string; schema: ZodType; never?: number[] };
  /** Extra OpenAPI fields (headers, content types) for routes that need them. */
  openapi?: Partial<RouteConfig>;
  handler: (ctx: RouteContext<z.infer<P>, z.infer<Q>, z.infer<B>>, deps: GatewayDeps) => Promise<Reply>;
}

export type AnyRoute = RouteSpec<ZodType, ZodType, ZodType>;

export function route<P extends ZodType = ZodType, Q extends ZodType = ZodType, B extends ZodType = ZodType>(
  spec: RouteSpec<P, Q, B>,
): AnyRoute {
  return spec;
}

const toExpressPath = (path: string) => path.replace(/\{([a-z_]+)\}/g, ':$1');

function parse<T extends ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  if (!schema) return value as z.infer<T>;
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({
    field: [where, ...i.path].join('.'),
    message: i.message,
  }));
  const detail = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  // A bad id in the path is a "malformed id", everything else a plain invalid request; both 400.
  if (where === 'path') throw Errors.malformedPath(detail, { errors });
  throw Errors.invalid(detail, { errors });
}

export function mountRoutes(
  router: Router,
  routes: AnyRoute[],
  deps: GatewayDeps,
  middleware: {
    auth: express.RequestHandler;
    rateLimit: (kind: RequestKind) => express.RequestHandler;
    json: express.RequestHandler;
    raw: express.RequestHandler;
  },
) {
  for (const spec of routes) {
    const chain: express.RequestHandler[] = [];
    if (spec.auth)
      chain.push(
        middleware.auth,
        middleware.rateLimit(spec.method === 'get' ? 'read' : spec.idempotent ? 'create' : 'write'),
      );
    if (spec.body === 'raw') chain.push(middleware.raw);
    else if (spec.body && spec.body !== 'multipart') chain.push(middleware.json);
    chain.push(async (req: Request, res: Response, next: NextFunction) => {
      try {
        // Text Postgres cannot store is refused here, once, before any service sees it.
        checkRawQuery(req.originalUrl);
        checkTextTree('query', req.query);
        if (spec.body && typeof spec.body !== 'string') checkTextTree('body', req.body);
        const params = parse(spec.params, req.params, 'path');
        const query = parse(spec.query, req.query, 'query');
        const body =
          spec.body && typeof spec.body !== 'string' ? parse(spec.body, req.body, 'body') : undefined;
        const accountId = req.accountId ?? '';
        const key = spec.idempotent ? req.get('idempotency-key') : undefined;
        const deadlineMs = spec.deadlineMs?.(req, deps.config) ?? deps.config.GRPC_TIMEOUT_MS;
        const ctx = {
          req,
          res,
          params,
          query,
          body,
          accountId,
          newId: (kind: string) => resourceId(accountId, key, kind) ?? randomUUID(),
          deadlineMs,
        };
        const heldMs = deadlineMs + DEADLINE_MARGIN_MS;
        const run = async (): Promise<StoredResponse> => {
          const reply = await spec.handler(ctx, deps);
          return {
            status: reply.status,
            contentType: 'application/json',
            body: JSON.stringify(reply.body),
            headers: reply.headers,
            bodyDigest: reply.bodyDigest,
          };
        };
        const bodyDigest = spec.bodyDigest;
        const lock = spec.lock;
        const locked = async () => {
          if (!lock) return run();
          const started = Date.now();
          await lock.owner(ctx, deps);
          return withLock(deps.redis, lock.resource(params), heldMs - (Date.now() - started), run);
        };
        const response = spec.idempotent
          ? await idempotent(
              deps.redis,
              {
                accountId: ctx.accountId,
                key,
                fingerprint: `${req.method} ${req.originalUrl} ${JSON.stringify(req.body ?? null)}`,
                ttlS: deps.config.IDEMPOTENCY_TTL_S,
                inFlightMs: heldMs,
                bodyDigest: bodyDigest && (() => bodyDigest(req, deps.config)),
              },
              locked,
            )
          : await locked();
        if (res.headersSent || res.destroyed) return;
        for (const [name, value] of Object.entries(response.headers ?? {})) res.setHeader(name, value);
        if ('replayed' in response && response.replayed) res.setHeader('Idempotent-Replayed', 'true');
        res.status(response.status).type(response.contentType).send(response.body);
      } catch (err) {
        next(err);
      }
    });
    router[spec.method](toExpressPath(spec.path), ...chain);
  }
}

export function registerRoutes(registry: OpenAPIRegistry, routes: AnyRoute[]) {
  for (const spec of routes) {
    const errorContent = spec.errors
      ? { [spec.errors.contentType]: { schema: spec.errors.schema } }
      : { 'application/problem+json': { schema: ProblemSchema } };
    const responses: RouteConfig['responses'] = {};
    for (const [status, r] of Object.entries(spec.responses)) {
      responses[status] = r.schema
        ? { description: r.description, content: { 'application/json': { schema: r.schema } } }
        : Number(status) >= 400
          ? { description: r.description, content: errorContent }
          : { description: r.description };
    }
    // What the shared middleware can answer on any route of this kind (auth, limits, locks, body
    // parsing), so every status a client can see is listed.
    for (const [status, description] of Object.entries({
      400: 'Malformed request or id',
      ...(spec.auth ? { 401: 'Missing, unknown or revoked API key', 429: 'Rate limited' } : {}),
      ...(spec.lock || spec.idempotent ? { 409: 'Resource busy or Idempotency-Key in flight' } : {}),
      ...(spec.body
        ? { 413: 'The body is too large', 415: 'The body is not of the accepted media type' }
        : {}),
      ...(spec.idempotent ? { 422: 'Idempotency-Key reused with another body' } : {}),
      // A deleted model, and every prompt of it, answers 410 Gone wherever it is named.
      ...(/\{(version|prompt)_id\}/.test(spec.path) ? { 410: 'The model was deleted' } : {}),
      500: 'Internal error',
      503: 'A dependency is unavailable',
      504: 'A dependency timed out',
    })) {
      if (spec.errors?.never?.includes(Number(status))) continue;
      responses[status] ??= { description, content: errorContent };
    }
    // A route's own OpenAPI additions (extra headers, a multipart body) extend what the spec
    // already says; they never replace its path parameters or query.
    const { request: extra, ...rest } = spec.openapi ?? {};
    const headerShape = {
      ...(spec.idempotent ? { 'idempotency-key': z.string().max(255).optional() } : {}),
      ...((extra?.headers as z.ZodObject | undefined)?.shape ?? {}),
    };
    const body =
      spec.body === 'raw'
        ? { content: { 'application/json': { schema: z.object({}).passthrough() } } }
        : spec.body && spec.body !== 'multipart'
          ? { content: { 'application/json': { schema: spec.body } } }
          : extra?.body;
    registry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      tags: spec.tags,
      security: spec.auth ? [{ apiKey: [] }] : [],
      request: {
        params: spec.params as never,
        query: spec.query as never,
        headers: Object.keys(headerShape).length ? z.object(headerShape) : undefined,
        body,
      },
      responses,
      ...rest,
    });
  }
}
