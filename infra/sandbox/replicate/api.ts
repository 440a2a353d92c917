/**
 * The `/v1` routes: the subset of Replicate's HTTP API that Atelier's trainer and inferencer use,
 * with Replicate's status codes (201 on create, 200 otherwise).
 */
import { pause } from './async';
import type { Core } from './core';
import { Problems } from './errors';
import { isObject } from './inputs';
import { Router, type Call, type Reply } from './http';
import type { Run } from './runs';
import type { PredictionObject } from './types';

const ok = (body: unknown): Reply => ({ status: 200, body });
const created = (body: unknown): Reply => ({ status: 201, body });
const page = (results: unknown[]): Reply => ok({ previous: null, next: null, results });

export function apiRoutes(core: Core): Router {
  return (
    new Router()
      .on('GET', '/v1/account', () =>
        ok({ type: 'organization', username: core.o.account, name: core.o.account, github_url: null }),
      )
      .on('GET', '/v1/webhooks/default/secret', () => ok({ key: core.o.webhookSecret }))

      .on('POST', '/v1/models', ({ body }) => {
        if (!isObject(body))
          throw Problems.invalid([{ field: '(root)', description: 'Invalid type. Expected: object' }]);
        return created(core.models.create(body));
      })
      .on('GET', '/v1/models/:owner/:name', ({ params }) => ok(core.models.get(params.owner!, params.name!)))
      .on('GET', '/v1/models/:owner/:name/versions', ({ params }) =>
        page(core.models.listVersions(params.owner!, params.name!)),
      )
      .on('GET', '/v1/models/:owner/:name/versions/:version', ({ params }) =>
        ok(core.models.getVersion(params.owner!, params.name!, params.version!)),
      )
      // Replicate answers both deletions with an empty body: 202 for a version (processed later
      // there), 204 for the model.
      .on('DELETE', '/v1/models/:owner/:name/versions/:version', ({ params }) => {
        core.deleteModelVersion(params.owner!, params.name!, params.version!);
        return { status: 202, body: undefined };
      })
      .on('DELETE', '/v1/models/:owner/:name', ({ params }) => {
        core.models.delete(params.owner!, params.name!);
        return { status: 204, body: undefined };
      })
      .on('POST', '/v1/models/:owner/:name/versions/:version/trainings', ({ params, body }) =>
        created(
          core
            .createTraining({ owner: params.owner!, name: params.name!, version: params.version! }, body)
            .view(),
        ),
      )
      .on('POST', '/v1/models/:owner/:name/predictions', (call) =>
        held(
          core,
          call,
          core.createPrediction(call.body, { owner: call.params.owner!, name: call.params.name! }),
        ),
      )

      .on('GET', '/v1/trainings', () => page(core.list('training').map((r) => r.view())))
      .on('GET', '/v1/trainings/:id', ({ params }) => ok(core.run('training', params.id!).view()))
      .on('POST', '/v1/trainings/:id/cancel', ({ params }) => {
        const run = core.run('training', params.id!);
        run.cancel();
        return ok(run.view());
      })

      .on('GET', '/v1/predictions', () => page(core.list('prediction').map((r) => r.view())))
      .on('POST', '/v1/predictions', (call) => held(core, call, core.createPrediction(call.body)))
      .on('GET', '/v1/predictions/:id', ({ params }) => ok(core.run('prediction', params.id!).view()))
      .on('POST', '/v1/predictions/:id/cancel', ({ params }) => {
        const run = core.run('prediction', params.id!);
        run.cancel();
        return ok(run.view());
      })
  );
}

/**
 * `Prefer: wait[=N]` (N in 1..60, default 60): hold the create response until the prediction is
 * terminal or N seconds passed, then answer with whatever state it is in.
 */
async function held(core: Core, call: Call, run: Run<PredictionObject>): Promise<Reply> {
  const seconds = preferWait(call.headers.prefer);
  if (seconds !== null) {
    const skip = new AbortController();
    void run.settled.then(() => skip.abort());
    call.gone.addEventListener('abort', () => skip.abort(), { once: true });
    await pause(seconds * 1000, core.stopper.signal, skip.signal).catch(() => {});
  }
  return created(run.view());
}

function preferWait(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header.join(',') : header;
  const m = value ? /(?:^|[\s,;])wait(?:\s*=\s*(\d+))?(?=$|[\s,;])/i.exec(value) : null;
  if (!m) return null;
  return Math.min(60, Math.max(1, m[1] ? Number(m[1]) : 60));
}
