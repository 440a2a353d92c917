import type { PromptImage } from '../domain/prompt.model';
import type { Queryable } from '@atelier/kit';

/** inferencer.prompt_images: a prompt's outputs in our bucket, in Replicate's order. */
export class PromptImageRepository {
  constructor(private readonly db: Queryable) {}

  /** All images of one prompt in one statement; positions follow the array order. */
  async insertAll(promptId: string, images: PromptImage[]): Promise<void> {
    if (!images.length) return;
    await this.db.query(
      `INSERT INTO inferencer.prompt_images (prompt_id, position, key, width, height, content_type, bytes)
       SELECT $1, t.ord - 1, t.key, t.width, t.height, t.content_type, t.bytes
         FROM unnest($2::text[], $3::int[], $4::int[], $5::text[], $6::int[])
              WITH ORDINALITY AS t(key, width, height, content_type, bytes, ord)`,
      [
        promptId,
        images.map((i) => i.key),
        images.map((i) => i.width),
        images.map((i) => i.height),
        images.map((i) => i.contentType),
        images.map((i) => i.bytes),
      ],
    );
  }

  /** The image rows of a deleted version's prompts (imager deletes the objects). */
  async deleteOfVersion(accountId: string, versionId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      `DELETE FROM inferencer.prompt_images i USING inferencer.prompts p
        WHERE i.prompt_id = p.id AND p.version_id = $1 AND p.account_id = $2`,
      [versionId, accountId],
    );
    return rowCount ?? 0;
  }
}
