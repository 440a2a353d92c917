-- Offers and packs (PRODUCT.md "Offers and packs"): operator-defined prompt templates sold at a
-- credit price, bundles of them, and the runs that spend one credit reservation each.
CREATE TABLE inferencer.offers (
  id                   uuid PRIMARY KEY,
  name                 text NOT NULL,
  template             text NOT NULL,
  negative_template    text NOT NULL DEFAULT '',
  price_credits        integer NOT NULL CHECK (price_credits >= 0),
  create_qty           integer NOT NULL CHECK (create_qty BETWEEN 1 AND 40),
  params               jsonb NOT NULL DEFAULT '{}',
  result_expiry_days   integer CHECK (result_expiry_days > 0),
  active               boolean NOT NULL DEFAULT true,
  updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inferencer.packs (
  id                 uuid PRIMARY KEY,
  name               text NOT NULL,
  offer_ids          uuid[] NOT NULL CHECK (cardinality(offer_ids) >= 1),
  -- Either a fixed price or a discount on the sum of the offers' prices.
  price_credits      integer CHECK (price_credits >= 0),
  discount_percent   integer NOT NULL DEFAULT 0 CHECK (discount_percent BETWEEN 0 AND 100),
  active             boolean NOT NULL DEFAULT true,
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- One run of an offer or a pack: one credit reservation (its id is the run id) for all its prompts.
CREATE TABLE inferencer.runs (
  id                 uuid PRIMARY KEY,
  account_id         uuid NOT NULL,
  version_id         uuid NOT NULL,
  kind               text NOT NULL CHECK (kind IN ('offer', 'pack')),
  ref_id             uuid NOT NULL,
  variables          jsonb NOT NULL,
  -- sha256 of account and inputs: the one-minute duplicate-run guard.
  request_hash       text NOT NULL,
  price_credits      integer NOT NULL,
  images_expected    integer NOT NULL,
  prompts_expected   integer NOT NULL,
  -- Every prompt of the run was attempted; the run settles when this is set and none is active.
  launched           boolean NOT NULL DEFAULT false,
  settled_credits    integer,
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_request_hash_idx ON inferencer.runs (request_hash, created_at DESC);
CREATE INDEX runs_version_idx ON inferencer.runs (version_id);

ALTER TABLE inferencer.prompts ADD COLUMN run_id uuid REFERENCES inferencer.runs (id);
CREATE INDEX prompts_run_idx ON inferencer.prompts (run_id) WHERE run_id IS NOT NULL;

-- Seeds so `make dev` shows offers and a pack; price = images, as a prompt costs.
INSERT INTO inferencer.offers (id, name, template, negative_template, price_credits, create_qty, params, result_expiry_days) VALUES
  ('0ffe0000-0000-4000-8000-000000000001', 'Professional headshot',
   'a professional corporate headshot of {trigger_word} {class}, {background} background, studio lighting, 85mm',
   'blurry, deformed, cartoon', 4, 4, '{"width": 512, "height": 512}', 30),
  ('0ffe0000-0000-4000-8000-000000000002', 'Outdoor portrait',
   'a natural light portrait of {trigger_word} {class} in {place}, golden hour, shallow depth of field',
   'blurry, deformed', 3, 3, '{"width": 512, "height": 512}', 30),
  ('0ffe0000-0000-4000-8000-000000000003', 'Oil painting',
   'an oil painting of {trigger_word} {class}, in the style of {painter}',
   '', 3, 3, '{}', NULL);
INSERT INTO inferencer.packs (id, name, offer_ids, price_credits, discount_percent) VALUES
  ('9ac00000-0000-4000-8000-000000000001', '10 professional headshots',
   ARRAY['0ffe0000-0000-4000-8000-000000000001', '0ffe0000-0000-4000-8000-000000000002',
         '0ffe0000-0000-4000-8000-000000000003']::uuid[], NULL, 0);
