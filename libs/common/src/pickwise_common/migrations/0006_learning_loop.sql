-- The learning loop (issue 12, decisions 1001-1007).
-- What each response showed: one row per impression event_id (de-duplicated like events), joined to clicks and
-- purchases by request_id.
CREATE TABLE IF NOT EXISTS impressions (
    event_id       uuid PRIMARY KEY,
    request_id     text NOT NULL,
    ts             timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    endpoint       text NOT NULL,
    catalog        text NOT NULL DEFAULT 'flipkart',
    user_id        text,
    session_id     text,
    query          text,
    experiment     text,
    variant        text,
    model_versions jsonb NOT NULL DEFAULT '{}'::jsonb,
    items          jsonb NOT NULL DEFAULT '[]'::jsonb,
    explore        jsonb,
    interleaving   boolean NOT NULL DEFAULT false,
    latency_ms     double precision,
    status         integer NOT NULL DEFAULT 200,
    degraded       jsonb NOT NULL DEFAULT '[]'::jsonb,
    payload        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS impressions_request_idx ON impressions (request_id);
CREATE INDEX IF NOT EXISTS impressions_user_ts_idx ON impressions (user_id, ts DESC);
CREATE INDEX IF NOT EXISTS impressions_ts_brin ON impressions USING brin (ts);
CREATE INDEX IF NOT EXISTS events_request_idx ON events (request_id) WHERE request_id IS NOT NULL;

-- What the model registry's automation did and why (promotions, rollbacks), besides the MLflow tag and metric.
CREATE TABLE IF NOT EXISTS model_events (
    id          bigserial PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    model_name  text NOT NULL,
    version     text NOT NULL,
    action      text NOT NULL CHECK (action IN ('registered', 'challenger', 'promoted', 'rolled_back', 'rejected')),
    reason      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS model_events_name_ts_idx ON model_events (model_name, ts DESC);
