import type { AsyncService } from '@atelier/kit';
import type { imager } from '@atelier/protos';
import {
  requireDatasetKey,
  requireOutputParent,
  type DatasetPacker,
  type ObjectStore,
  type OutputTransfer,
  type UrlSigner,
} from '../domain';

export interface ImagerHandlerDeps {
  packer: DatasetPacker;
  transfer: OutputTransfer;
  urls: UrlSigner;
  bucket: ObjectStore;
}

/** Thin: proto in, domain call, proto out. Errors become statuses in the kit's implement(). */
export function imagerHandlers(d: ImagerHandlerDeps): AsyncService<typeof imager.ImagerServiceService> {
  return {
    async packTrainingImages(requests, ctx) {
      const result = await d.packer.pack(requests, ctx.signal);
      if (!result.ok) {
        return {
          problems: result.problems,
          datasetKey: '',
          datasetUrl: '',
          urlExpiresAt: undefined,
          images: 0,
          zipBytes: 0,
        };
      }
      return {
        problems: [],
        datasetKey: result.key,
        datasetUrl: result.url,
        urlExpiresAt: result.expiresAt,
        images: result.images,
        zipBytes: result.zipBytes,
      };
    },

    async deleteDataset(request) {
      const key = requireDatasetKey(request.datasetKey);
      return { deleted: (await d.bucket.purge(key, { exact: true })) > 0 };
    },

    async deleteOutputs(request) {
      return { deleted: await d.bucket.purge(requireOutputParent(request.keyPrefix)) };
    },

    async transferOutputs(request, ctx) {
      return { images: await d.transfer.transfer(request.keyPrefix, request.urls, ctx.signal) };
    },

    async signUrls(request) {
      return { urls: await d.urls.sign(request.keys) };
    },
  };
}
