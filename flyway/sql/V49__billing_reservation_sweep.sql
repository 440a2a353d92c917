-- An open reservation that outlived every prompt and pack run (its owner crashed between
-- reserving and recording the prompt, or never came back) is released by billing's sweep, so
-- credits add up without an operator. sweep_lease_until is the sweep's claim: two replicas never
-- work one reservation at once.
ALTER TABLE billing.credit_reservations ADD COLUMN sweep_lease_until timestamptz;
CREATE INDEX credit_reservations_open_age_idx ON billing.credit_reservations (created_at)
  WHERE status = 'open';
