-- Session memory (DESIGN §4): a session and its turns (query, shown items, answer, variant).
CREATE TABLE IF NOT EXISTS sessions (
    session_id text PRIMARY KEY,
    user_id    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS session_turns (
    session_id text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn_no    integer NOT NULL,
    query      text NOT NULL,
    item_ids   text[] NOT NULL DEFAULT '{}',
    answer     text,
    variant    text,
    parsed     jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id text,
    ts         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, turn_no)
);
CREATE UNIQUE INDEX IF NOT EXISTS session_turns_request_idx ON session_turns (session_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_user_idx ON sessions (user_id, updated_at DESC);
