-- The normalised catalog written by data-pipeline ingest (one row per source row, idempotent upserts).
CREATE TABLE IF NOT EXISTS items (
    item_id            text PRIMARY KEY,
    catalog            text NOT NULL,
    title              text NOT NULL,
    brand              text NOT NULL,
    model              text NOT NULL,
    color              text,
    category           text NOT NULL DEFAULT 'mobile',
    ram_gb             double precision,
    storage_gb         double precision,
    price_inr          double precision NOT NULL,
    original_price_inr double precision,
    discount_pct       double precision,
    rating             double precision,
    price_band         text NOT NULL,
    group_id           text NOT NULL,
    attrs              jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS items_group_idx ON items (group_id);
CREATE INDEX IF NOT EXISTS items_brand_price_idx ON items (brand, price_inr);
