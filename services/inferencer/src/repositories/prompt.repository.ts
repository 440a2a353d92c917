import type { Prompt, PromptImage, PromptParams, PromptStatus } from '../domain/prompt.model';
import { PG_UNIQUE_VIOLATION, pgCode, type Queryable } from '@atelier/kit';

interface PromptRow {
  id: string;
  account_id: string;
  version_id: string;
  status: PromptStatus;
  prompt: string;
  negative_prompt: string;
  params: StoredParams;
  num_outputs: number;
  replicate_prediction_id: string | null;
  error: string | null;
  created_at: Date;
  created_key: string;
  completed_at: Date | null;
  predict_time: number | null;
  cost_micros: number | null;
  deadline_at: Date;
  callback_url: string | null;
  run_id: string | null;
  erased_at: Date | null;
  reported_success: { outputs: string[]; predict_time: number | null } | null;
  images?: Array<{ key: string; width: number; height: number; content_type: string; bytes: number }>;
}

/** `params` as stored (jsonb, the API's names); prompt and negative_prompt have their own columns. */
interface StoredParams {
  num_outputs?: number;
  width?: number;
  height?: number;
  num_inference_steps?: number;
  guidance_scale?: number;
  seed?: number;
}

// created_key keeps the microseconds a JS Date would drop: the listing cursor compares on them.
const COLUMNS = `p.id, p.account_id, p.version_id, p.status, p.prompt, p.negative_prompt, p.params, p.num_outputs,
  p.replicate_prediction_id, p.error, p.created_at,
  to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key,
  p.completed_at, p.predict_time, p.cost_micros, p.deadline_at, p.callback_url, p.run_id, p.erased_at,
  p.reported_success`;

// The prompt's images aggregated into the same row, so a prompt (or a page of them) is one statement.
const WITH_IMAGES = `${COLUMNS},
  COALESCE((SELECT json_agg(json_build_object('key', i.key, 'width', i.width, 'height', i.height,
                                              'content_type', i.content_type, 'bytes', i.bytes) ORDER BY i.position)
              FROM inferencer.prompt_images i WHERE i.prompt_id = p.id), '[]'::json) AS images`;

const ACTIVE = `('starting', 'processing')`;

function toParams(row: PromptRow): PromptParams {
  const s = row.params ?? {};
  return {
    prompt: row.prompt,
    negativePrompt: row.negative_prompt,
    numOutputs: row.num_outputs,
    width: s.width,
    height: s.height,
    numInferenceSteps: s.num_inference_steps,
    guidanceScale: s.guidance_scale,
    seed: s.seed,
  };
}

function toPrompt(row: PromptRow): Prompt {
  return {
    id: row.id,
    accountId: row.account_id,
    versionId: row.version_id,
    status: row.status,
    params: toParams(row),
    predictionId: row.replicate_prediction_id,
    error: row.error,
    createdAt: row.created_at,
    createdKey: row.created_key,
    completedAt: row.completed_at,
    predictTime: row.predict_time,
    costMicros: row.cost_micros,
    deadlineAt: row.deadline_at,
    callbackUrl: row.callback_url,
    runId: row.run_id,
    erasedAt: row.erased_at,
    reportedSuccess: row.reported_success && {
      status: 'succeeded',
      outputs: row.reported_success.outputs,
      predictTime: row.reported_success.predict_time,
    },
    images: (row.images ?? []).map((i): PromptImage => ({
      key: i.key,
      width: i.width,
      height: i.height,
      contentType: i.content_type,
      bytes: i.bytes,
    })),
  };
}

export interface NewPrompt {
  id: string;
  accountId: string;
  versionId: string;
  params: PromptParams;
  /** The prediction must be finished this long from now. */
  timeoutMs: number;
  /** When the reconciler may treat the row as orphaned if no prediction was attached by then. */
  graceMs: number;
  callbackUrl?: string | null;
  /** The offer or pack run whose one reservation pays for this prompt. */
  runId?: string;
}

/** inferencer.prompts: one statement per method; `status` guards make every transition happen once. */
export class PromptRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * Inserts the prompt unless the account already has `maxRunning` unfinished prompts (`at_cap`)
   * or the id exists (`id_taken`: a retry of the same create raced this one). Two creates racing
   * for the last slot can both get in: the caller counts again after.
   */
  async insertUnderCap(p: NewPrompt, maxRunning: number): Promise<'inserted' | 'at_cap' | 'id_taken'> {
    const stored: StoredParams = {
      num_outputs: p.params.numOutputs,
      width: p.params.width,
      height: p.params.height,
      num_inference_steps: p.params.numInferenceSteps,
      guidance_scale: p.params.guidanceScale,
      seed: p.params.seed,
    };
    try {
      const { rowCount } = await this.db.query(
        `INSERT INTO inferencer.prompts (id, account_id, version_id, prompt, negative_prompt, params, num_outputs, deadline_at, next_check_at, callback_url, run_id)
         SELECT $1, $2, $3, $4, $5, $6, $7, now() + $8 * interval '1 millisecond', now() + $9 * interval '1 millisecond', $11, $12
          WHERE (SELECT count(*) FROM inferencer.prompts WHERE account_id = $2 AND status IN ${ACTIVE}) < $10`,
        [
          p.id,
          p.accountId,
          p.versionId,
          p.params.prompt,
          p.params.negativePrompt,
          JSON.stringify(stored),
          p.params.numOutputs,
          p.timeoutMs,
          p.graceMs,
          maxRunning,
          p.callbackUrl ?? null,
          p.runId ?? null,
        ],
      );
      return rowCount === 1 ? 'inserted' : 'at_cap';
    } catch (err) {
      if (pgCode(err) === PG_UNIQUE_VIOLATION) return 'id_taken';
      throw err;
    }
  }

  /** The account's unfinished prompts. */
  async countActiveOf(accountId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM inferencer.prompts WHERE account_id = $1 AND status IN ${ACTIVE}`,
      [accountId],
    );
    return rows[0]?.n ?? 0;
  }

  /** Removes a prompt that never reached Replicate (its reservation was refused). */
  async deleteUnstarted(id: string): Promise<void> {
    await this.db.query('DELETE FROM inferencer.prompts WHERE id = $1 AND replicate_prediction_id IS NULL', [
      id,
    ]);
  }

  /** A prompt with its images. */
  async find(id: string): Promise<Prompt | undefined> {
    const { rows } = await this.db.query<PromptRow>(
      `SELECT ${WITH_IMAGES} FROM inferencer.prompts p WHERE p.id = $1`,
      [id],
    );
    return rows[0] && toPrompt(rows[0]);
  }

  /** A run's prompts with their images, in creation order. */
  async listByRun(runId: string): Promise<Prompt[]> {
    const { rows } = await this.db.query<PromptRow>(
      `SELECT ${WITH_IMAGES} FROM inferencer.prompts p WHERE p.run_id = $1 ORDER BY p.created_at, p.id`,
      [runId],
    );
    return rows.map(toPrompt);
  }

  async findByPrediction(predictionId: string): Promise<Prompt | undefined> {
    const { rows } = await this.db.query<PromptRow>(
      `SELECT ${COLUMNS} FROM inferencer.prompts p WHERE p.replicate_prediction_id = $1`,
      [predictionId],
    );
    return rows[0] && toPrompt(rows[0]);
  }

  /**
   * Records the prediction CreatePrompt made. False when the prompt is no longer starting (it was
   * canceled, or the reconciler gave up on it, while Replicate answered).
   */
  async attachPrediction(id: string, predictionId: string, nextCheckMs: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE inferencer.prompts
          SET replicate_prediction_id = $2, next_check_at = now() + $3 * interval '1 millisecond'
        WHERE id = $1 AND status = 'starting' AND replicate_prediction_id IS NULL`,
      [id, predictionId, nextCheckMs],
    );
    return rowCount === 1;
  }

  /** starting → processing, once Replicate says it runs. */
  async markProcessing(id: string): Promise<void> {
    await this.db.query(
      `UPDATE inferencer.prompts SET status = 'processing', started_at = COALESCE(started_at, now())
        WHERE id = $1 AND status = 'starting'`,
      [id],
    );
  }

  /**
   * Records a success Replicate's webhook reported and makes the prompt due at once, for the claim
   * loop to copy its outputs; false when the prompt has finished or a success was recorded already.
   */
  async recordSuccess(id: string, outputs: string[], predictTime: number | null): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE inferencer.prompts SET reported_success = $2, next_check_at = now()
        WHERE id = $1 AND status IN ${ACTIVE} AND reported_success IS NULL`,
      [id, JSON.stringify({ outputs, predict_time: predictTime })],
    );
    return rowCount === 1;
  }

  /** Takes the right to copy an unfinished prompt's outputs for `ms`; false while another holds it. */
  async takeCompletionLease(id: string, ms: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE inferencer.prompts SET completing_until = now() + make_interval(secs => $2::double precision / 1000)
        WHERE id = $1 AND status IN ${ACTIVE} AND (completing_until IS NULL OR completing_until < now())`,
      [id, ms],
    );
    return rowCount === 1;
  }

  async dropCompletionLease(id: string): Promise<void> {
    await this.db.query('UPDATE inferencer.prompts SET completing_until = NULL WHERE id = $1', [id]);
  }

  /** Hands an unfinished prompt to the reconciler's next pass. */
  async scheduleNow(id: string): Promise<void> {
    await this.db.query(
      `UPDATE inferencer.prompts SET next_check_at = now() WHERE id = $1 AND status IN ${ACTIVE}`,
      [id],
    );
  }

  /**
   * Locks an unfinished prompt for the rest of the caller's transaction; false when it is
   * finished (also when another transaction finished it while this one waited for the lock:
   * Postgres re-checks the condition on the row it finally gets).
   */
  async lockActive(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `SELECT 1 FROM inferencer.prompts WHERE id = $1 AND status IN ${ACTIVE} FOR UPDATE`,
      [id],
    );
    return rowCount === 1;
  }

  /**
   * The one transition to a terminal status: the prompt as it now is, without its images (the
   * caller holds those); undefined when the prompt had finished already.
   */
  async finish(
    id: string,
    f: {
      status: 'succeeded' | 'failed' | 'canceled';
      error: string | null;
      predictTime: number | null;
      costMicros: number | null;
    },
  ): Promise<Prompt | undefined> {
    const { rows } = await this.db.query<PromptRow>(
      `UPDATE inferencer.prompts p
          SET status = $2, error = $3, predict_time = $4, cost_micros = $5, completed_at = now(),
              reported_success = NULL -- kept only until the prompt finishes: Replicate's output URLs
        WHERE p.id = $1 AND p.status IN ${ACTIVE}
       RETURNING ${COLUMNS}`,
      [id, f.status, f.error, f.predictTime, f.costMicros],
    );
    return rows[0] && toPrompt(rows[0]);
  }

  /**
   * The reconciler's claim: due unfinished prompts, skipping rows another replica (or a webhook)
   * holds, pushed `leaseMs` into the future so no other pass takes them meanwhile.
   */
  async claimDue(limit: number, leaseMs: number): Promise<Prompt[]> {
    const { rows } = await this.db.query<PromptRow>(
      `UPDATE inferencer.prompts p SET next_check_at = now() + $2 * interval '1 millisecond'
        WHERE p.id IN (SELECT id FROM inferencer.prompts
                        WHERE status IN ${ACTIVE} AND next_check_at <= now()
                        ORDER BY next_check_at LIMIT $1
                        FOR UPDATE SKIP LOCKED)
        RETURNING ${COLUMNS}`,
      [limit, leaseMs],
    );
    return rows.map(toPrompt);
  }

  /** When the longest-waiting due prompt came due (the claim's own filter), for the loop lag. */
  async oldestDue(): Promise<Date | null> {
    const { rows } = await this.db.query<{ at: Date | null }>(
      `SELECT min(next_check_at) AS at FROM inferencer.prompts WHERE status IN ${ACTIVE} AND next_check_at <= now()`,
    );
    return rows[0]?.at ?? null;
  }

  async countActive(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM inferencer.prompts WHERE status IN ${ACTIVE}`,
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * One page of a version's succeeded prompts with their images, newest first, after the
   * cursor's (created_at, id): one statement, served by prompts_listing_idx.
   */
  async listSucceeded(
    accountId: string,
    versionId: string,
    after: { createdKey: string; id: string } | undefined,
    limit: number,
  ): Promise<Prompt[]> {
    const { rows } = await this.db.query<PromptRow>(
      `SELECT ${WITH_IMAGES} FROM inferencer.prompts p
        WHERE p.version_id = $1 AND p.account_id = $2 AND p.status = 'succeeded' AND p.erased_at IS NULL
          AND ($3::timestamptz IS NULL OR (p.created_at, p.id) < ($3::timestamptz, $4::uuid))
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT $5`,
      [versionId, accountId, after?.createdKey ?? null, after?.id ?? null, limit],
    );
    return rows.map(toPrompt);
  }

  /** A version's unfinished prompts (its deletion stops them). */
  async listActiveOfVersion(accountId: string, versionId: string): Promise<Prompt[]> {
    const { rows } = await this.db.query<PromptRow>(
      `SELECT ${COLUMNS} FROM inferencer.prompts p
        WHERE p.version_id = $1 AND p.account_id = $2 AND p.status IN ${ACTIVE}`,
      [versionId, accountId],
    );
    return rows.map(toPrompt);
  }

  /** A deleted version's prompt texts (and errors, which may quote them) are erased; how many prompts. */
  async eraseVersion(accountId: string, versionId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      `UPDATE inferencer.prompts
          SET prompt = '', negative_prompt = '', error = NULL, reported_success = NULL,
              erased_at = COALESCE(erased_at, now())
        WHERE version_id = $1 AND account_id = $2`,
      [versionId, accountId],
    );
    return rowCount ?? 0;
  }
}
