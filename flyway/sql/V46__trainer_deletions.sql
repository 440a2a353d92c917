-- Data lifecycle (PRODUCT.md, "Data lifecycle and privacy"). Deletion is a durable job: a row per
-- request, claimed with FOR UPDATE SKIP LOCKED by whichever replica is free, retried until done.

-- deleted_at: the customer asked for the version to go; from then on it answers 410 Gone.
-- dataset_deleted_at: the training zip is gone from the bucket (retention, or the deletion).
ALTER TABLE trainer.versions
  ADD COLUMN deleted_at timestamptz,
  ADD COLUMN dataset_deleted_at timestamptz,
  -- The retention job's lease, and when a failed dataset deletion is tried again.
  ADD COLUMN dataset_retry_at timestamptz;

-- The retention job's queue: finished trainings whose zip is still in the bucket.
CREATE INDEX versions_dataset_retention_idx ON trainer.versions (completed_at)
  WHERE dataset_deleted_at IS NULL AND completed_at IS NOT NULL;

-- One row per deleted version: cancel its training, delete the model at Replicate, erase its
-- prompts, forfeit its credits, delete its objects in the bucket. A claim pushes next_attempt_at
-- past a lease, so the row of a replica that died mid-way is claimed again once the lease ends.
CREATE TABLE trainer.version_deletions (
  version_id       uuid PRIMARY KEY REFERENCES trainer.versions (id) ON DELETE CASCADE,
  account_id       uuid NOT NULL,
  requested_at     timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  completed_at     timestamptz
);
CREATE INDEX version_deletions_due_idx ON trainer.version_deletions (next_attempt_at)
  WHERE completed_at IS NULL;
CREATE INDEX version_deletions_account_idx ON trainer.version_deletions (account_id);

-- One row per deleted account: every version's deletion, then billing revokes the keys and
-- erases the email.
CREATE TABLE trainer.account_deletions (
  account_id       uuid PRIMARY KEY,
  requested_at     timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  completed_at     timestamptz
);
CREATE INDEX account_deletions_due_idx ON trainer.account_deletions (next_attempt_at)
  WHERE completed_at IS NULL;
