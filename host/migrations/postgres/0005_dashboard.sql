-- The operator dashboard's sessions, and the indexes its order list needs
-- with many orders (filters by status or user, newest first; a date range).

-- A signed-in browser: the session id is in its cookie, only its SHA-256
-- here (a copy of this table signs no one in). The token's digest is
-- checked against the settings on every request: a token removed from
-- settings.toml ends its sessions.
CREATE TABLE dashboard_sessions (
    id_sha256    TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    token_name   TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- (status, id) and (username, id) serve the filters newest first, and
-- replace the one-column indexes of 0001, as (order_id, id) replaces the
-- attempt log's.
CREATE INDEX orders_status_id ON orders (status, id);
CREATE INDEX orders_username_id ON orders (username, id);
CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX fulfillment_attempts_order_id ON fulfillment_attempts (order_id, id);
DROP INDEX orders_status;
DROP INDEX orders_username;
DROP INDEX fulfillment_attempts_order;
