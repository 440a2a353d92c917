import { Errors } from '@atelier/kit';
import { common } from '@atelier/protos';
import { z } from '../../openapi/registry';
import { route } from '../define';
import {
  DeletionAccepted,
  PageQuery,
  RunStatus,
  TrainAccepted,
  TrainForm,
  Version,
  VersionList,
  uuid,
} from './schemas';
import { runStatus, toVersionJson } from './mappers';
import { digestUpload, streamUploadToTrainer, type UploadLimits } from './upload';
import type { GatewayConfig } from '../../config';

const uploadLimits = (config: GatewayConfig): UploadLimits => ({
  maxFileBytes: config.UPLOAD_MAX_FILE_BYTES,
  maxFiles: config.UPLOAD_MAX_FILES,
  maxTotalBytes: config.UPLOAD_MAX_TOTAL_BYTES,
});

export const versionRoutes = [
  route({
    method: 'post',
    path: '/api/v1/versions/train/{payment_id}',
    summary: 'Upload 5–30 photos and start training a model with a paid init payment',
    tags: ['versions'],
    auth: true,
    params: z.object({ payment_id: uuid('payment_id') }),
    query: z.object({
      class: z.string().optional(),
      trigger_word: z.string().optional(),
      callback_url: z.string().optional(),
    }),
    body: 'multipart',
    // The photos stream through unbuffered: the key is claimed on the path, the photos' digest is
    // taken as they stream to trainer, and a repeat of an answered key is read into its own
    // digest and compared (middleware/idempotency.ts): other photos under the same key are 422.
    idempotent: true,
    bodyDigest: (req, config) => digestUpload(req, uploadLimits(config)),
    deadlineMs: (_req, config) => config.UPLOAD_TIMEOUT_MS,
    lock: {
      resource: (p) => `payment:${p.payment_id}`,
      owner: async ({ accountId, params }, { mesh }) => {
        const { payment } = await mesh.billing.getPayment({ accountId, paymentId: params.payment_id });
        if (!payment) throw Errors.notFound('payment', params.payment_id);
      },
    },
    openapi: { request: { body: { content: { 'multipart/form-data': { schema: TrainForm } } } } },
    responses: {
      202: { description: 'Photos accepted, training started', schema: TrainAccepted },
      402: { description: 'The payment is not paid' },
      404: { description: 'Unknown payment' },
      409: { description: 'Not an init payment, or already used' },
      413: { description: 'A photo or the whole upload is too large' },
      422: { description: 'Photos rejected: every problem of every file in `errors`' },
      429: { description: 'The account already has as many trainings running as its tier allows at once' },
    },
    handler: async ({ req, accountId, params, query, newId, deadlineMs }, { mesh, config }) => {
      // Trainer runs the whole use case (claim, photos, training, compensation); this only frames
      // the multipart body as its stream. Fields win over the query, as form fields should.
      const labels = (fields: Record<string, string>) => ({
        className: fields.class ?? query.class,
        triggerWord: fields.trigger_word ?? query.trigger_word,
        callbackUrl: fields.callback_url ?? query.callback_url,
      });
      const { response, digest } = await streamUploadToTrainer(
        req,
        mesh.trainer.trainVersion({ timeoutMs: deadlineMs }),
        {
          header: (fields) => ({
            accountId,
            paymentId: params.payment_id,
            // Derived from the Idempotency-Key: a retry names the version its first attempt started.
            versionId: newId('version'),
            maxRunning: req.limits?.trainingsRunning ?? 0,
            ...labels(fields),
          }),
          end: (fields, files) => ({ files, ...labels(fields) }),
        },
        uploadLimits(config),
      );
      if (!response.version) {
        throw Errors.photosRejected(response.problems.length, {
          errors: response.problems.map((p) => ({
            file: p.file,
            index: p.index,
            code: p.code,
            detail: p.detail,
          })),
        });
      }
      return {
        status: 202,
        body: {
          version_id: response.version.versionId,
          status: runStatus(response.version.status),
          images: response.images,
        },
        bodyDigest: digest,
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/versions/info/{version_id}',
    summary: 'A trained model: status, readiness and image credits',
    tags: ['versions'],
    auth: true,
    params: z.object({ version_id: uuid('version_id') }),
    responses: {
      200: { description: 'The version', schema: Version },
      404: { description: 'Unknown version' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const [{ version }, { balance }] = await Promise.all([
        mesh.trainer.getVersion({ accountId, versionId: params.version_id }),
        mesh.billing.getCreditBalance({ accountId, versionId: params.version_id }),
      ]);
      if (!version) throw Errors.notFound('version', params.version_id);
      return { status: 200, body: toVersionJson(version, balance) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/versions/{version_id}/cancel',
    summary: 'Cancel a running training',
    tags: ['versions'],
    auth: true,
    params: z.object({ version_id: uuid('version_id') }),
    lock: {
      resource: (p) => `version:${p.version_id}`,
      owner: async ({ accountId, params }, { mesh }) => {
        const { version } = await mesh.trainer.getVersion({ accountId, versionId: params.version_id });
        if (!version) throw Errors.notFound('version', params.version_id);
      },
    },
    responses: {
      200: { description: 'The canceled version', schema: Version },
      404: { description: 'Unknown version' },
      409: { description: 'Training already finished' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const { version } = await mesh.trainer.cancelTraining({ accountId, versionId: params.version_id });
      if (!version) throw Errors.notFound('version', params.version_id);
      const { balance } = await mesh.billing.getCreditBalance({ accountId, versionId: params.version_id });
      return { status: 200, body: toVersionJson(version, balance) };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/versions',
    summary: 'My models, newest first, optionally of one status',
    tags: ['versions'],
    auth: true,
    query: PageQuery.extend({ status: RunStatus.optional() }),
    responses: { 200: { description: 'A page of versions', schema: VersionList } },
    handler: async ({ accountId, query }, { mesh }) => {
      const page = await mesh.trainer.listVersions({
        accountId,
        status: query.status
          ? common.runStatusFromJSON(`RUN_STATUS_${query.status.toUpperCase()}`)
          : common.RunStatus.RUN_STATUS_UNSPECIFIED,
        limit: query.limit ?? 0,
        cursor: query.cursor ?? '',
      });
      // One call for the page's balances, not one per version.
      const { balances } = page.versions.length
        ? await mesh.billing.listCreditBalances({
            accountId,
            versionIds: page.versions.map((v) => v.versionId),
          })
        : { balances: [] };
      const byVersion = new Map(balances.map((b) => [b.versionId, b]));
      return {
        status: 200,
        body: {
          versions: page.versions.map((v) => toVersionJson(v, byVersion.get(v.versionId))),
          next_cursor: page.nextCursor || null,
        },
      };
    },
  }),
  route({
    method: 'delete',
    path: '/api/v1/versions/{version_id}',
    summary:
      'Delete a model and everything of it: training stopped, model deleted at Replicate, photos, images and prompt texts erased',
    tags: ['versions'],
    auth: true,
    params: z.object({ version_id: uuid('version_id') }),
    responses: {
      202: {
        description:
          'Deletion accepted and under way; the version answers 410 from now on. A repeat while it runs answers 202 again',
        schema: DeletionAccepted,
      },
      404: { description: 'Unknown version' },
      410: { description: 'The version was deleted' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const res = await mesh.trainer.deleteVersion({ accountId, versionId: params.version_id });
      return {
        status: 202,
        body: {
          id: res.versionId,
          status: 'deleting',
          requested_at: (res.requestedAt ?? new Date()).toISOString(),
        },
      };
    },
  }),
];
