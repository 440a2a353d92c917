-- Each plan names the tier it puts its buyer in; an account's tier is the best tier of its paid,
-- unrefunded payments (free before any). Existing plans sell the standard tier.
ALTER TABLE billing.plans ADD COLUMN tier text NOT NULL DEFAULT 'standard'
  CHECK (tier IN ('free', 'standard', 'pro'));

-- The tier is looked up on every key check: an account's paid payments, found by index.
CREATE INDEX payments_account_paid_idx ON billing.payments (account_id) WHERE status = 'paid';
