-- A deleted version's prompts keep their rows (timings and costs for accounting) with the texts
-- erased; they answer 410 Gone from then on.
ALTER TABLE inferencer.prompts ADD COLUMN erased_at timestamptz;
CREATE INDEX prompts_version_idx ON inferencer.prompts (version_id);
