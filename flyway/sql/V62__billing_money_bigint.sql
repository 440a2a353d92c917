-- Money in minor units is int64 on the wire; the columns follow, so a plan priced above
-- 2 147 483 647 minor units (21 474 836.47 in a two-decimal currency, or far less in a
-- zero-decimal one such as JPY or KRW at scale) is stored instead of refused. Widening
-- integer to bigint keeps every value and the CHECK constraints; it rewrites the two tables
-- once, under an ACCESS EXCLUSIVE lock (run it in a quiet moment on a large payments table).
-- The services read int8 as a JS number through kit's pool (createPool), which refuses a value
-- beyond Number.MAX_SAFE_INTEGER rather than rounding it.
ALTER TABLE billing.plans ALTER COLUMN price TYPE bigint;
ALTER TABLE billing.payments
  ALTER COLUMN amount TYPE bigint,
  ALTER COLUMN plan_price TYPE bigint;
