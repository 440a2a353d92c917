-- Whoever copies a prompt's outputs holds this lease, so a webhook and a reconciler never copy
-- (and on failure clean up) the same bucket keys at once.
ALTER TABLE inferencer.prompts ADD COLUMN completing_until timestamptz;
