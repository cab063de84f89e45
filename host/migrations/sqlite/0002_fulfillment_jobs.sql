-- The durable queue of asynchronous fulfillment: one job per order, written
-- in the order's transaction. A worker claims a due job by taking its lease
-- (lease_owner, lease_until) and renews it while it works; a job whose lease
-- ran out (its host died) is due again. Times: unix milliseconds.
CREATE TABLE fulfillment_jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     BIGINT NOT NULL UNIQUE REFERENCES orders (id),
    order_number TEXT NOT NULL,
    -- queued (to run at run_at), done (Complete), failed (nothing left that
    -- a retry could fix), gave-up (out of retries)
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_owner  TEXT, -- the token of the claim: <host>/<n>
    lease_until  BIGINT,
    -- the host that made the last attempt
    worked_by    TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX fulfillment_jobs_due ON fulfillment_jobs (state, run_at);
CREATE INDEX fulfillment_jobs_order_number ON fulfillment_jobs (order_number);
