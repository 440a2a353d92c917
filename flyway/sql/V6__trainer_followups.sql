-- What must still happen after a training exists, even when billing or Replicate is down at that
-- moment: the payment's credits granted to the version and the usage recorded, each once. NULL means
-- still to do; the reconciler retries until both are set and, for a succeeded training, pushed_at.
ALTER TABLE trainer.versions
  ADD COLUMN grant_settled_at timestamptz,
  ADD COLUMN usage_recorded_at timestamptz,
  -- Nothing left to do for this version: the reconciler never looks at it again.
  ADD COLUMN settled_at timestamptz;

-- The reconciler's queue is every version not settled: trainings in flight, finished ones with a
-- follow-up left, and rows whose training was never created (a StartTraining that died half-way;
-- their next_check_at is set past the start grace). It replaces V3's index, which covered only
-- trainings in flight.
DROP INDEX trainer.versions_due_idx;
CREATE INDEX versions_due_idx ON trainer.versions (next_check_at) WHERE settled_at IS NULL;
