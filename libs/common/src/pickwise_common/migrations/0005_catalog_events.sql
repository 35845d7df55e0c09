-- Catalogs as tenants (decision 0801): every event belongs to a catalog; purchases keep their quantity and
-- invoice (the basket of "bought together"); "dismiss" hides an item from a user's recommendations.
ALTER TABLE events ADD COLUMN IF NOT EXISTS catalog text NOT NULL DEFAULT 'flipkart';
ALTER TABLE events ADD COLUMN IF NOT EXISTS quantity integer;
ALTER TABLE events ADD COLUMN IF NOT EXISTS invoice text;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_type_check;
ALTER TABLE events ADD CONSTRAINT events_type_check
    CHECK (type IN ('view', 'click', 'add_to_cart', 'purchase', 'dismiss'));
CREATE INDEX IF NOT EXISTS events_catalog_user_ts_idx ON events (catalog, user_id, ts DESC);
CREATE INDEX IF NOT EXISTS events_catalog_type_ts_idx ON events (catalog, type, ts);
CREATE INDEX IF NOT EXISTS items_catalog_idx ON items (catalog);
ALTER TABLE items ALTER COLUMN brand SET DEFAULT '';
ALTER TABLE items ALTER COLUMN model SET DEFAULT '';
ALTER TABLE items ALTER COLUMN price_band DROP NOT NULL;
ALTER TABLE items ADD COLUMN IF NOT EXISTS currency text NOT NULL DEFAULT 'INR';
ALTER TABLE items ALTER COLUMN price_inr DROP NOT NULL;
ALTER TABLE items ADD COLUMN IF NOT EXISTS price double precision;
UPDATE items SET price = price_inr WHERE price IS NULL;
