-- Events about versions, written in the transaction that changes them and relayed to billing,
-- which delivers them (docs/architecture.md, "Callbacks"). A relayed row is deleted.
CREATE TABLE trainer.outbox (
  id            uuid PRIMARY KEY,
  account_id    uuid NOT NULL,
  type          text NOT NULL,
  data          text NOT NULL,
  callback_url  text,
  created_at    timestamptz NOT NULL,
  due_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due_idx ON trainer.outbox (due_at);

-- The per-request callback URL given at creation.
ALTER TABLE trainer.versions ADD COLUMN callback_url text;
