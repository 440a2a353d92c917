import type { Queryable } from '@atelier/kit';
import type { Run, RunKind } from '../domain/offer.model';

interface RunRow {
  id: string;
  account_id: string;
  version_id: string;
  kind: RunKind;
  ref_id: string;
  variables: Record<string, string>;
  request_hash: string;
  price_credits: number;
  images_expected: number;
  prompts_expected: number;
  launched: boolean;
  settled_credits: number | null;
  created_at: Date;
}

const COLUMNS = `id, account_id, version_id, kind, ref_id, variables, request_hash, price_credits,
  images_expected, prompts_expected, launched, settled_credits, created_at`;

const toRun = (r: RunRow): Run => ({
  id: r.id,
  accountId: r.account_id,
  versionId: r.version_id,
  kind: r.kind,
  refId: r.ref_id,
  variables: r.variables,
  requestHash: r.request_hash,
  priceCredits: r.price_credits,
  imagesExpected: r.images_expected,
  promptsExpected: r.prompts_expected,
  launched: r.launched,
  settledCredits: r.settled_credits,
  createdAt: r.created_at,
});

export type NewRun = Omit<Run, 'launched' | 'settledCredits' | 'createdAt'>;

/** inferencer.runs: offer and pack runs, one credit reservation each. */
export class RunRepository {
  constructor(private readonly db: Queryable) {}

  /** Serialises the duplicate-run check of one request hash until the transaction ends. */
  async lockRequest(requestHash: string): Promise<void> {
    await this.db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 17))', [requestHash]);
  }

  /** The newest run with this hash created less than `windowMs` ago. */
  async findRecent(requestHash: string, windowMs: number): Promise<Run | undefined> {
    const { rows } = await this.db.query<RunRow>(
      `SELECT ${COLUMNS} FROM inferencer.runs
        WHERE request_hash = $1 AND created_at > now() - $2 * interval '1 millisecond'
        ORDER BY created_at DESC LIMIT 1`,
      [requestHash, windowMs],
    );
    return rows[0] && toRun(rows[0]);
  }

  async insert(r: NewRun): Promise<void> {
    await this.db.query(
      `INSERT INTO inferencer.runs (id, account_id, version_id, kind, ref_id, variables, request_hash,
         price_credits, images_expected, prompts_expected)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        r.id,
        r.accountId,
        r.versionId,
        r.kind,
        r.refId,
        JSON.stringify(r.variables),
        r.requestHash,
        r.priceCredits,
        r.imagesExpected,
        r.promptsExpected,
      ],
    );
  }

  /** Removes a run that reserved nothing (billing refused), so that a retry is not a duplicate. */
  async delete(id: string): Promise<void> {
    await this.db.query('DELETE FROM inferencer.runs WHERE id = $1', [id]);
  }

  async find(id: string): Promise<Run | undefined> {
    const { rows } = await this.db.query<RunRow>(`SELECT ${COLUMNS} FROM inferencer.runs WHERE id = $1`, [
      id,
    ]);
    return rows[0] && toRun(rows[0]);
  }

  /** Locks the run for the rest of the transaction: its finishers settle it one at a time. */
  async lock(id: string): Promise<Run | undefined> {
    const { rows } = await this.db.query<RunRow>(
      `SELECT ${COLUMNS} FROM inferencer.runs WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0] && toRun(rows[0]);
  }

  async markLaunched(id: string): Promise<void> {
    await this.db.query('UPDATE inferencer.runs SET launched = true WHERE id = $1', [id]);
  }

  /**
   * The run's unfinished prompts and the images its prompts produced, one row. Within the
   * settling transaction, after the run's row lock, so no finisher of the same run interleaves.
   */
  async progress(id: string): Promise<{ active: number; images: number }> {
    const { rows } = await this.db.query<{ active: number; images: number }>(
      `SELECT (SELECT count(*)::int FROM inferencer.prompts p
                WHERE p.run_id = $1 AND p.status IN ('starting', 'processing')) AS active,
              (SELECT count(*)::int FROM inferencer.prompt_images i
                 JOIN inferencer.prompts p ON p.id = i.prompt_id WHERE p.run_id = $1) AS images`,
      [id],
    );
    return rows[0] ?? { active: 0, images: 0 };
  }

  /** A deleted version's runs keep their prices and counts; the customer's variables go. */
  async eraseVersion(accountId: string, versionId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      `UPDATE inferencer.runs SET variables = '{}'::jsonb
        WHERE account_id = $1 AND version_id = $2 AND variables <> '{}'::jsonb`,
      [accountId, versionId],
    );
    return rowCount ?? 0;
  }

  async markSettled(id: string, credits: number): Promise<void> {
    await this.db.query(
      'UPDATE inferencer.runs SET settled_credits = $2 WHERE id = $1 AND settled_credits IS NULL',
      [id, credits],
    );
  }
}
