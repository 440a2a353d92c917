import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { Errors } from '@atelier/kit';
import type { Credits, OutputStore, VersionDirectory } from '../../src/domain/ports';
import type { PromptImage } from '../../src/domain/prompt.model';

/**
 * Stand-ins for trainer, billing and imager that keep their contracts (protos/atelier/*), so the
 * inferencer domain can be exercised against a real database and the Replicate sandbox before
 * and independently of those services. The end-to-end tests in gateway/test/prompts.test.ts run
 * the same scenarios against the real ones.
 */

export class FakeVersions implements VersionDirectory {
  readonly versions = new Map<string, { accountId: string; isReady: boolean; replicateVersion: string }>();

  async getVersion(accountId: string, versionId: string) {
    const v = this.versions.get(versionId);
    if (!v || v.accountId !== accountId) throw Errors.notFound('version', versionId);
    return { triggerWord: 'TOK', className: 'person', ...v };
  }
}

interface Reservation {
  versionId: string;
  amount: number;
  status: 'open' | 'settled' | 'released';
  settled: number;
}

/** billing's credit rules: conditional reserve, settle/release close a reservation once, usage once. */
export class FakeCredits implements Credits {
  readonly balances = new Map<string, { accountId: string; granted: number; used: number }>();
  readonly reservations = new Map<string, Reservation>();
  readonly usage = new Map<
    string,
    { accountId: string; versionId: string; predictSeconds: number; costMicros: number }
  >();
  /** Closings that changed something (a second settle of one reservation is not one). */
  readonly closings: Array<{ id: string; status: 'settled' | 'released'; settled: number }> = [];
  /** Lowest `granted - used` ever seen. */
  lowestRemaining = Infinity;
  /** Milliseconds each call takes, to widen race windows. */
  latencyMs = 0;
  /** When set, the next calls of that method throw it. */
  failNext: { method: 'reserve' | 'settle' | 'release'; error: Error; count: number } | undefined;

  grant(accountId: string, versionId: string, amount: number) {
    const b = this.balances.get(versionId) ?? { accountId, granted: 0, used: 0 };
    b.granted += amount;
    this.balances.set(versionId, b);
  }

  remaining(versionId: string): number {
    const b = this.balances.get(versionId);
    return b ? b.granted - b.used : 0;
  }

  private async enter(method: 'reserve' | 'settle' | 'release') {
    if (this.latencyMs) await sleep(this.latencyMs);
    const f = this.failNext;
    if (f && f.method === method && f.count > 0) {
      f.count--;
      throw f.error;
    }
  }

  async reserve(accountId: string, versionId: string, reservationId: string, amount: number) {
    await this.enter('reserve');
    const b = this.balances.get(versionId);
    if (!b || b.accountId !== accountId) throw Errors.insufficientCredits(0, amount);
    if (this.reservations.has(reservationId)) return { remaining: b.granted - b.used };
    if (b.granted - b.used < amount) throw Errors.insufficientCredits(b.granted - b.used, amount);
    b.used += amount;
    this.lowestRemaining = Math.min(this.lowestRemaining, b.granted - b.used);
    this.reservations.set(reservationId, { versionId, amount, status: 'open', settled: 0 });
    return { remaining: b.granted - b.used };
  }

  async balance(_accountId: string, versionId: string) {
    return { remaining: this.remaining(versionId) };
  }

  async settle(reservationId: string, used: number) {
    await this.enter('settle');
    this.close(reservationId, 'settled', used);
  }

  async release(reservationId: string) {
    await this.enter('release');
    if (!this.reservations.has(reservationId)) return; // the adapter's not_found → no-op
    this.close(reservationId, 'released', 0);
  }

  private close(id: string, status: 'settled' | 'released', keep: number) {
    const r = this.reservations.get(id);
    if (!r) throw Errors.notFound('reservation', id);
    if (r.status !== 'open') return;
    if (keep > r.amount) throw Errors.invalid(`used ${keep} exceeds the reservation of ${r.amount}`);
    r.status = status;
    r.settled = keep;
    this.balances.get(r.versionId)!.used -= r.amount - keep;
    this.closings.push({ id, status, settled: keep });
  }

  async recordUsage(
    accountId: string,
    promptId: string,
    versionId: string,
    predictSeconds: number,
    costMicros: number,
  ) {
    if (!this.usage.has(promptId))
      this.usage.set(promptId, { accountId, versionId, predictSeconds, costMicros });
  }
}

/** imager's TransferOutputs: downloads each URL, reads the real size, keeps the bytes by key. */
export class FakeOutputs implements OutputStore {
  readonly objects = new Map<string, Buffer>();
  transfers = 0;
  /** While set, every transfer waits for it: a slow bucket. */
  hold: Promise<void> | undefined;
  /** This many transfers fail as they do while the bucket is down. */
  failNext = 0;

  async transfer(keyPrefix: string, urls: string[]): Promise<PromptImage[]> {
    this.transfers++;
    if (this.hold) await this.hold;
    if (this.failNext > 0) {
      this.failNext--;
      throw Errors.unavailable('bucket');
    }
    return Promise.all(
      urls.map(async (url, n) => {
        const res = await fetch(url);
        if (res.status === 404) throw Errors.notFound('output', url);
        if (!res.ok) throw Errors.unavailable(`output ${url}`);
        const body = Buffer.from(await res.arrayBuffer());
        const meta = await sharp(body).metadata();
        const ext = meta.format === 'jpeg' ? 'jpg' : (meta.format ?? 'bin');
        const key = `${keyPrefix}/${n}.${ext}`;
        this.objects.set(key, body);
        return {
          key,
          width: meta.width,
          height: meta.height,
          contentType: `image/${meta.format}`,
          bytes: body.length,
        };
      }),
    );
  }

  async deleteAll(keyPrefix: string): Promise<number> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(`${keyPrefix}/`));
    for (const k of keys) this.objects.delete(k);
    return keys.length;
  }
}
