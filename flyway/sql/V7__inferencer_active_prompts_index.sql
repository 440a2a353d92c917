-- The reconciler claims every unfinished prompt that is due, including one whose CreatePrompt
-- died before it recorded a Replicate prediction (its credits must still be released), so the
-- due index must not exclude rows without a prediction id.
DROP INDEX inferencer.prompts_due_idx;
CREATE INDEX prompts_active_due_idx ON inferencer.prompts (next_check_at)
  WHERE status IN ('starting', 'processing');
