-- Keyset listings order by (created_at, id) within one account: these indexes serve every page.
CREATE INDEX versions_account_listing_idx ON trainer.versions (account_id, created_at DESC, id DESC);
DROP INDEX trainer.versions_account_idx;
CREATE INDEX payments_account_listing_idx ON billing.payments (account_id, created_at DESC, id DESC);
DROP INDEX billing.payments_account_idx;
