CREATE TABLE trainer.versions (
  id                      uuid PRIMARY KEY,
  account_id              uuid NOT NULL,
  -- One training per init payment.
  payment_id              uuid NOT NULL UNIQUE,
  status                  text NOT NULL DEFAULT 'starting'
                            CHECK (status IN ('starting', 'processing', 'succeeded', 'failed', 'canceled')),
  class_name              text NOT NULL,
  trigger_word            text NOT NULL,
  model                   text NOT NULL,
  replicate_training_id   text UNIQUE,
  replicate_version       text,
  dataset_key             text NOT NULL,
  image_count             integer NOT NULL CHECK (image_count > 0),
  error                   text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  started_at              timestamptz,
  completed_at            timestamptz,
  pushed_at               timestamptz,
  predict_time            double precision,
  cost_micros             bigint,
  -- The reconciler's schedule: when to ask Replicate next, and when to give up.
  next_check_at           timestamptz NOT NULL DEFAULT now(),
  deadline_at             timestamptz NOT NULL,
  CHECK (pushed_at IS NULL OR status = 'succeeded')
);
CREATE INDEX versions_account_idx ON trainer.versions (account_id, created_at DESC);
CREATE INDEX versions_due_idx ON trainer.versions (next_check_at)
  WHERE status IN ('starting', 'processing') AND replicate_training_id IS NOT NULL;

-- Each Replicate webhook-id is applied once.
CREATE TABLE trainer.webhook_events (
  webhook_id   text PRIMARY KEY,
  run_id       text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
