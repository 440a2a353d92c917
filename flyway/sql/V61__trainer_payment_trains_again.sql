-- An init payment whose training never became ready is given back and trains again, so one
-- payment may have several versions; billing's claim still binds it to one training at a time.
ALTER TABLE trainer.versions DROP CONSTRAINT versions_payment_id_key;
CREATE INDEX versions_payment_idx ON trainer.versions (payment_id);
