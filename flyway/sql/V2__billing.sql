CREATE TABLE billing.accounts (
  id          uuid PRIMARY KEY,
  email       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_key ON billing.accounts (lower(email));

-- Keys are stored only as SHA-256 hashes; the prefix is what people see and revoke by.
CREATE TABLE billing.api_keys (
  id          uuid PRIMARY KEY,
  account_id  uuid NOT NULL REFERENCES billing.accounts (id),
  prefix      text NOT NULL UNIQUE,
  key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
CREATE INDEX api_keys_account_idx ON billing.api_keys (account_id);

CREATE TABLE billing.plans (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9_]{1,64}$'),
  name        text NOT NULL,
  description text NOT NULL DEFAULT '',
  price       integer NOT NULL CHECK (price >= 0),
  currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  images      integer NOT NULL CHECK (images > 0),
  is_init     boolean NOT NULL,
  min_images  integer NOT NULL DEFAULT 5 CHECK (min_images >= 1),
  max_images  integer NOT NULL DEFAULT 30,
  deprecated  boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (max_images >= min_images)
);

INSERT INTO billing.plans (id, name, description, price, currency, images, is_init) VALUES
  ('basic_init', 'Basic', 'Train one personalised model and get 100 images.', 1300, 'usd', 100, true),
  ('basic_extra_creds', 'Extra images', 'Add 1000 images to a trained model.', 1300, 'usd', 1000, false);

CREATE TABLE billing.payments (
  id                  uuid PRIMARY KEY,
  account_id          uuid NOT NULL REFERENCES billing.accounts (id),
  plan_id             text NOT NULL REFERENCES billing.plans (id),
  is_init             boolean NOT NULL,
  status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'paid', 'failed', 'expired', 'refunded')),
  amount              integer NOT NULL CHECK (amount >= 0),
  currency            text NOT NULL,
  promocode_id        text,
  promocode_applied   boolean NOT NULL DEFAULT false,
  stripe_session_id   text UNIQUE,
  stripe_payment_intent text,
  checkout_url        text,
  expires_at          timestamptz,
  -- Add-on: the version it tops up, fixed at creation. Init: the version it trained, once claimed.
  version_id          uuid,
  claimed_at          timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  paid_at             timestamptz,
  refunded_at         timestamptz,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (is_init OR version_id IS NOT NULL),
  CHECK ((claimed_at IS NULL) OR (is_init AND version_id IS NOT NULL))
);
CREATE INDEX payments_account_idx ON billing.payments (account_id, created_at DESC);
-- An init payment trains exactly one version.
CREATE UNIQUE INDEX payments_one_training_per_init ON billing.payments (version_id) WHERE is_init;
CREATE INDEX payments_addon_version_idx ON billing.payments (version_id) WHERE NOT is_init;
CREATE INDEX payments_intent_idx ON billing.payments (stripe_payment_intent);

-- Each Stripe event id is applied once, in the same transaction as its effect.
CREATE TABLE billing.stripe_events (
  id           text PRIMARY KEY,
  type         text NOT NULL,
  payment_id   uuid,
  received_at  timestamptz NOT NULL DEFAULT now()
);

-- remaining = granted - used can never go below zero: the CHECK refuses it under any concurrency.
CREATE TABLE billing.credit_balances (
  version_id  uuid PRIMARY KEY,
  account_id  uuid NOT NULL REFERENCES billing.accounts (id),
  granted     integer NOT NULL DEFAULT 0 CHECK (granted >= 0),
  used        integer NOT NULL DEFAULT 0 CHECK (used >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (used <= granted)
);

-- One grant per paid payment; revoked is what a refund took back.
CREATE TABLE billing.credit_grants (
  payment_id  uuid PRIMARY KEY REFERENCES billing.payments (id),
  version_id  uuid NOT NULL REFERENCES billing.credit_balances (version_id),
  amount      integer NOT NULL CHECK (amount > 0),
  revoked     integer NOT NULL DEFAULT 0 CHECK (revoked >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (revoked <= amount)
);

-- A prompt's hold on credits: open until settled (images produced) or released.
CREATE TABLE billing.credit_reservations (
  id          uuid PRIMARY KEY,
  version_id  uuid NOT NULL REFERENCES billing.credit_balances (version_id),
  amount      integer NOT NULL CHECK (amount > 0),
  status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'settled', 'released')),
  settled     integer NOT NULL DEFAULT 0 CHECK (settled >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  closed_at   timestamptz,
  CHECK (settled <= amount)
);
CREATE INDEX credit_reservations_open_idx ON billing.credit_reservations (version_id) WHERE status = 'open';

-- Every change of a balance, with its reason.
CREATE TABLE billing.credit_ledger (
  id              bigserial PRIMARY KEY,
  version_id      uuid NOT NULL REFERENCES billing.credit_balances (version_id),
  reason          text NOT NULL CHECK (reason IN ('grant', 'reserve', 'settle', 'release', 'revoke')),
  granted_delta   integer NOT NULL DEFAULT 0,
  used_delta      integer NOT NULL DEFAULT 0,
  payment_id      uuid,
  reservation_id  uuid,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_version_idx ON billing.credit_ledger (version_id, id);

-- Replicate time and estimated cost per training or prediction, for the revenue/cost report.
CREATE TABLE billing.usage (
  kind             text NOT NULL CHECK (kind IN ('training', 'prediction')),
  ref_id           uuid NOT NULL,
  account_id       uuid NOT NULL REFERENCES billing.accounts (id),
  predict_seconds  double precision NOT NULL CHECK (predict_seconds >= 0),
  cost_micros      bigint NOT NULL CHECK (cost_micros >= 0),
  recorded_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, ref_id)
);
CREATE INDEX usage_account_time_idx ON billing.usage (account_id, recorded_at);
