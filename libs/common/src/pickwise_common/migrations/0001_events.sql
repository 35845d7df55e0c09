-- Interaction events (DESIGN §4): one row per event_id, whatever the number of deliveries.
CREATE TABLE IF NOT EXISTS events (
    event_id    uuid PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('view', 'click', 'add_to_cart', 'purchase')),
    user_id     text NOT NULL,
    item_id     text NOT NULL,
    session_id  text,
    request_id  text,
    position    integer,
    source      text,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS events_user_ts_idx ON events (user_id, ts DESC);
CREATE INDEX IF NOT EXISTS events_ts_brin ON events USING brin (ts);
CREATE INDEX IF NOT EXISTS events_item_idx ON events (item_id);
