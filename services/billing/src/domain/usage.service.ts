import { Errors, requireUuid } from '@atelier/kit';
import type { Store } from '../repositories';
import type { UsageReportRow } from '../repositories/usage.repository';

const KINDS = new Set(['training', 'prediction'] as const);

/** Replicate time and cost per training or prediction, and revenue against it. */
export class UsageService {
  constructor(private readonly store: Store) {}

  /** RecordUsage: once per training (version id) or prediction (prompt id); false on a repeat. */
  async record(u: {
    accountId: string;
    kind: string;
    refId: string;
    versionId: string;
    predictSeconds: number;
    costMicros: number;
  }): Promise<boolean> {
    const accountId = requireUuid('account_id', u.accountId);
    const refId = requireUuid('ref_id', u.refId);
    const versionId = requireUuid('version_id', u.versionId);
    if (!KINDS.has(u.kind as 'training'))
      throw Errors.invalid(`kind must be training or prediction, got ${JSON.stringify(u.kind)}`);
    if (!Number.isFinite(u.predictSeconds) || u.predictSeconds < 0)
      throw Errors.invalid('predict_seconds must be >= 0');
    if (!Number.isInteger(u.costMicros) || u.costMicros < 0)
      throw Errors.invalid('cost_micros must be an integer >= 0');
    return this.store.repos.usage.insert({
      kind: u.kind as 'training' | 'prediction',
      refId,
      accountId,
      versionId,
      predictSeconds: u.predictSeconds,
      costMicros: u.costMicros,
    });
  }

  /** GetAccountUsage: one account's usage in [from, to), per version and in total. */
  async forAccount(q: { accountId: string; from?: Date; to?: Date }) {
    const accountId = requireUuid('account_id', q.accountId);
    if (q.from && q.to && q.from > q.to) throw Errors.invalid('from must not be after to');
    const rows = await this.store.repos.usage.perVersion(accountId, q.from ?? null, q.to ?? null);
    const empty = {
      version_id: null,
      is_total: true,
      images: 0,
      trainings: 0,
      predict_seconds: 0,
      amount_paid: 0,
      currency: null,
    };
    return { versions: rows.filter((r) => !r.is_total), total: rows.find((r) => r.is_total) ?? empty };
  }

  /** GetUsageReport: paid revenue and recorded cost per account in [from, to). */
  report(q: { accountId?: string; from?: Date; to?: Date }): Promise<UsageReportRow[]> {
    const accountId = q.accountId ? requireUuid('account_id', q.accountId) : null;
    if (q.from && q.to && q.from > q.to) throw Errors.invalid('from must not be after to');
    return this.store.repos.usage.report(accountId, q.from ?? null, q.to ?? null);
  }
}
