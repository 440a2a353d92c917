import type { AsyncService } from '@atelier/kit';
import type { trainer } from '@atelier/protos';
import type { DeletionService } from '../domain/deletion.service';
import type { ReplicateEventService } from '../domain/replicate-event.service';
import type { TrainingService } from '../domain/training.service';
import type { VersionService } from '../domain/version.service';
import { fromRunStatus, toVersion } from './trainer.mappers';

export interface TrainerDomain {
  versions: VersionService;
  training: TrainingService;
  events: ReplicateEventService;
  deletions: DeletionService;
}

/** Thin: proto in, domain call, proto out. Errors are mapped by the kit. */
export function trainerHandlers(d: TrainerDomain): AsyncService<typeof trainer.TrainerServiceService> {
  return {
    async trainVersion(requests, ctx) {
      const r = await d.training.train(requests, ctx.signal);
      return r.ok
        ? { version: toVersion(r.version), problems: [], images: r.images }
        : { version: undefined, problems: r.problems, images: 0 };
    },
    async getVersion(req) {
      return { version: toVersion(await d.versions.get(req.accountId, req.versionId)) };
    },
    async cancelTraining(req) {
      return { version: toVersion(await d.versions.cancel(req.accountId, req.versionId)) };
    },
    async listVersions(req) {
      const page = await d.versions.list(req.accountId, fromRunStatus(req.status), req.limit, req.cursor);
      return { versions: page.versions.map(toVersion), nextCursor: page.nextCursor };
    },
    async handleReplicateEvent(req) {
      return d.events.handle(req);
    },
    async deleteVersion(req) {
      return d.deletions.deleteVersion(req.accountId, req.versionId);
    },
    async deleteAccountData(req) {
      return { versions: await d.deletions.deleteAccount(req.accountId) };
    },
  };
}
