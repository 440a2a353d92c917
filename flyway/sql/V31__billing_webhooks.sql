-- Callbacks to the customer's server (PRODUCT.md, "Callbacks"). Billing owns the account's
-- endpoints, the events announced to it and their deliveries; see docs/architecture.md.

-- kind 'endpoint': a URL the account registered. kind 'callback': no URL, it holds the secret
-- that signs deliveries to per-request callback_url's (one per account).
CREATE TABLE billing.webhook_endpoints (
  id                          uuid PRIMARY KEY,
  account_id                  uuid NOT NULL REFERENCES billing.accounts (id),
  kind                        text NOT NULL DEFAULT 'endpoint' CHECK (kind IN ('endpoint', 'callback')),
  url                         text,
  -- Empty: every event type.
  events                      text[] NOT NULL DEFAULT '{}',
  description                 text NOT NULL DEFAULT '',
  secret                      text NOT NULL,
  -- After a rotation the old secret keeps signing (a second signature) until it expires.
  previous_secret             text,
  previous_secret_expires_at  timestamptz,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  failing_since               timestamptz,
  disabled_at                 timestamptz,
  disabled_reason             text,
  CHECK ((kind = 'endpoint') = (url IS NOT NULL))
);
CREATE INDEX webhook_endpoints_account_idx ON billing.webhook_endpoints (account_id, created_at);
CREATE UNIQUE INDEX webhook_endpoints_one_callback ON billing.webhook_endpoints (account_id) WHERE kind = 'callback';

-- payload is the exact body every attempt sends (text, not jsonb: the bytes are signed).
CREATE TABLE billing.webhook_events (
  id          uuid PRIMARY KEY,
  account_id  uuid NOT NULL,
  type        text NOT NULL,
  payload     text NOT NULL,
  created_at  timestamptz NOT NULL
);

CREATE TABLE billing.webhook_deliveries (
  id                uuid PRIMARY KEY,
  event_id          uuid NOT NULL REFERENCES billing.webhook_events (id),
  endpoint_id       uuid NOT NULL REFERENCES billing.webhook_endpoints (id) ON DELETE CASCADE,
  account_id        uuid NOT NULL,
  url               text NOT NULL,
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  -- Claimed attempts: the claim increments it, so each attempt has its own number.
  attempts          integer NOT NULL DEFAULT 0,
  last_http_status  integer,
  last_error        text,
  -- Due time while pending; a claim pushes it past the attempt's lease.
  next_attempt_at   timestamptz NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  delivered_at      timestamptz,
  UNIQUE (event_id, endpoint_id, url)
);
CREATE INDEX webhook_deliveries_due_idx ON billing.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_listing_idx ON billing.webhook_deliveries (account_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_pending_age_idx ON billing.webhook_deliveries (created_at) WHERE status = 'pending';
