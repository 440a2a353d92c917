-- An erased account keeps its row (payments and usage stay for accounting) without its email.
ALTER TABLE billing.accounts
  ALTER COLUMN email DROP NOT NULL,
  ADD COLUMN deleted_at timestamptz;

-- A deleted version's credits are forfeited once: granted drops to used, and a later grant (an
-- add-on paid after the deletion) adds nothing.
ALTER TABLE billing.credit_balances ADD COLUMN forfeited_at timestamptz;

ALTER TABLE billing.credit_ledger DROP CONSTRAINT credit_ledger_reason_check;
ALTER TABLE billing.credit_ledger ADD CONSTRAINT credit_ledger_reason_check
  CHECK (reason IN ('grant', 'reserve', 'settle', 'release', 'revoke', 'forfeit'));
