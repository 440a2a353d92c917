CREATE TABLE inferencer.prompts (
  id                        uuid PRIMARY KEY,
  account_id                uuid NOT NULL,
  version_id                uuid NOT NULL,
  status                    text NOT NULL DEFAULT 'starting'
                              CHECK (status IN ('starting', 'processing', 'succeeded', 'failed', 'canceled')),
  prompt                    text NOT NULL,
  negative_prompt           text NOT NULL DEFAULT '',
  params                    jsonb NOT NULL,
  num_outputs               integer NOT NULL CHECK (num_outputs BETWEEN 1 AND 4),
  replicate_prediction_id   text UNIQUE,
  error                     text,
  created_at                timestamptz NOT NULL DEFAULT now(),
  started_at                timestamptz,
  completed_at              timestamptz,
  predict_time              double precision,
  cost_micros               bigint,
  next_check_at             timestamptz NOT NULL DEFAULT now(),
  deadline_at               timestamptz NOT NULL
);
-- The listing: a version's completed prompts, newest first, paged by (created_at, id).
CREATE INDEX prompts_listing_idx ON inferencer.prompts (version_id, created_at DESC, id DESC)
  WHERE status = 'succeeded';
CREATE INDEX prompts_due_idx ON inferencer.prompts (next_check_at)
  WHERE status IN ('starting', 'processing') AND replicate_prediction_id IS NOT NULL;

CREATE TABLE inferencer.prompt_images (
  prompt_id     uuid NOT NULL REFERENCES inferencer.prompts (id) ON DELETE CASCADE,
  position      integer NOT NULL CHECK (position >= 0),
  key           text NOT NULL,
  width         integer NOT NULL CHECK (width > 0),
  height        integer NOT NULL CHECK (height > 0),
  content_type  text NOT NULL,
  bytes         integer NOT NULL CHECK (bytes > 0),
  PRIMARY KEY (prompt_id, position)
);

CREATE TABLE inferencer.webhook_events (
  webhook_id   text PRIMARY KEY,
  run_id       text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
