-- Events about prompts, written in the transaction that changes them and relayed to billing,
-- which delivers them (docs/architecture.md, "Callbacks"). A relayed row is deleted.
CREATE TABLE inferencer.outbox (
  id            uuid PRIMARY KEY,
  account_id    uuid NOT NULL,
  type          text NOT NULL,
  data          text NOT NULL,
  callback_url  text,
  created_at    timestamptz NOT NULL,
  due_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due_idx ON inferencer.outbox (due_at);

-- The per-request callback URL given at creation.
ALTER TABLE inferencer.prompts ADD COLUMN callback_url text;
