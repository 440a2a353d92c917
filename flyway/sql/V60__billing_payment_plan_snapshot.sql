-- A payment keeps the plan as it was bought: editing a plan later changes nothing already sold.
ALTER TABLE billing.payments
  ADD COLUMN plan_price       integer CHECK (plan_price >= 0),
  ADD COLUMN plan_images      integer CHECK (plan_images > 0),
  ADD COLUMN plan_min_images  integer CHECK (plan_min_images >= 1),
  ADD COLUMN plan_max_images  integer;

UPDATE billing.payments p
   SET plan_price = pl.price, plan_images = pl.images,
       plan_min_images = pl.min_images, plan_max_images = pl.max_images
  FROM billing.plans pl
 WHERE pl.id = p.plan_id;

ALTER TABLE billing.payments
  ALTER COLUMN plan_price SET NOT NULL,
  ALTER COLUMN plan_images SET NOT NULL,
  ALTER COLUMN plan_min_images SET NOT NULL,
  ALTER COLUMN plan_max_images SET NOT NULL,
  ADD CHECK (plan_max_images >= plan_min_images);

-- The versions init payments paid for, as trainer reported them: whose they are and whether they
-- became ready. Add-on payments need a ready version of the buyer, and billing answers that from
-- its own rows instead of asking trainer (so no service calls back into the one calling it).
CREATE TABLE billing.trained_versions (
  version_id  uuid PRIMARY KEY,
  account_id  uuid NOT NULL REFERENCES billing.accounts (id),
  payment_id  uuid NOT NULL REFERENCES billing.payments (id),
  ready_at    timestamptz,
  failed_at   timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (ready_at IS NULL OR failed_at IS NULL)
);

-- Versions trained before this migration: readiness was trainer's answer; copied once, here.
INSERT INTO billing.trained_versions (version_id, account_id, payment_id, ready_at, failed_at, created_at)
SELECT v.id, v.account_id, v.payment_id,
       CASE WHEN v.status = 'succeeded' THEN v.pushed_at END,
       CASE WHEN v.status IN ('failed', 'canceled') THEN coalesce(v.completed_at, now()) END,
       v.created_at
  FROM trainer.versions v
  JOIN billing.payments p ON p.id = v.payment_id AND p.account_id = v.account_id;
