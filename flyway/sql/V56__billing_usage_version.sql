-- Usage names the model it belongs to. A prompt of an offer or pack run spends from the run's one
-- reservation, so its prompt id (ref_id) finds no reservation and the model could not be told:
-- GET /api/v1/usage listed each such prompt as a model of its own.
ALTER TABLE billing.usage ADD COLUMN version_id uuid;
UPDATE billing.usage SET version_id = ref_id WHERE kind = 'training';
UPDATE billing.usage u SET version_id = r.version_id
  FROM billing.credit_reservations r WHERE u.kind = 'prediction' AND r.id = u.ref_id;
