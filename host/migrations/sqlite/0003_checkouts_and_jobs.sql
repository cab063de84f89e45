-- Money is never lost (issue 9). Same tables and columns on SQLite and
-- PostgreSQL; only identity columns are spelled differently.

-- The intent of a checkout, stored before the payment processor is called:
-- the validated request (without the payment token), the amount and the
-- payment source. A checkout becomes an order exactly once, in the
-- transaction that creates the order; one that was charged but made no
-- order (a dropped request, a killed process, a database that failed) is
-- completed from this record by its `checkout` job. The idempotency key
-- lives here: a declined or abandoned checkout gives its key back (NULL).
CREATE TABLE checkouts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key   TEXT UNIQUE,
    request_hash      TEXT NOT NULL,
    request           TEXT NOT NULL,
    processor         TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    payment_source_id BIGINT NOT NULL REFERENCES payment_sources (id),
    -- pending (money may have moved), ordered, declined (nothing moved),
    -- abandoned (the processor has no charge for it: nothing moved)
    state             TEXT NOT NULL,
    order_number      TEXT,
    failure           TEXT,
    -- the key a checkout that moved no money gave back (see reopening)
    given_up_key      TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX checkouts_state ON checkouts (state);

-- Keys of checkouts made before this migration that made an order keep
-- replaying it. The others are dropped: their requests were not kept.
INSERT INTO checkouts (idempotency_key, request_hash, request, processor, amount_minor, currency,
                       payment_source_id, state, order_number, failure, created_at, updated_at)
SELECT keys.key, keys.request_hash, '{}', sources.processor, sources.amount_minor, sources.currency,
       sources.id, 'ordered',
       keys.order_number, keys.failure, keys.created_at, keys.created_at
FROM idempotency_keys keys
JOIN orders ON orders.number = keys.order_number
JOIN payment_sources sources ON sources.id = orders.payment_source_id;
DROP TABLE idempotency_keys;

-- The one durable queue of module and money work, in both fulfillment
-- modes: `checkout` (complete a paid checkout), `fulfill` (fulfill an
-- order's lines), `refund` (credit, then revoke). A job is claimed by
-- taking its lease (lease_owner, lease_until) and renewed while it runs; a
-- job whose lease ran out (its host died) is due again. Times are unix
-- milliseconds of the database's clock.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    -- checkouts.id, orders.id or refunds.id, by kind
    subject_id   BIGINT NOT NULL,
    -- the order it concerns (none yet for a checkout)
    order_number TEXT,
    -- queued (to run at run_at), done, failed (nothing left that a retry
    -- could fix), gave-up (out of retries)
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_owner  TEXT, -- the token of the claim: <host>/<n>
    lease_until  BIGINT,
    worked_by    TEXT, -- the host that made the last attempt
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (kind, subject_id)
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_order_number ON jobs (order_number);

INSERT INTO jobs (kind, subject_id, order_number, state, attempts, run_at, worked_by, last_error, created_at, updated_at)
SELECT 'fulfill', order_id, order_number, state, attempts, run_at, worked_by, last_error, created_at, updated_at
FROM fulfillment_jobs;
-- Orders fulfilled in the request before this migration get a job too: an
-- order left Open by a dropped request is fulfilled now.
INSERT INTO jobs (kind, subject_id, order_number, state, attempts, run_at, created_at, updated_at)
SELECT 'fulfill', id, number,
       CASE status WHEN 'Complete' THEN 'done' WHEN 'Open' THEN 'queued' ELSE 'failed' END,
       CASE status WHEN 'Open' THEN 0 ELSE 1 END, 0, created_at, created_at
FROM orders
WHERE id NOT IN (SELECT order_id FROM fulfillment_jobs);
DROP TABLE fulfillment_jobs;

-- A refund's credit: recorded as intended before the processor is called,
-- and as done in the transaction that changes the refund's status.
-- credit_state: none, intended, done, failed.
ALTER TABLE refunds ADD COLUMN credit_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE refunds ADD COLUMN credit_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN credit_reference TEXT;
-- Whether the approval revokes the lines (approve) or not (approve_payment_only).
ALTER TABLE refunds ADD COLUMN revoke BIGINT NOT NULL DEFAULT 1;
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX payment_events_source ON payment_events (payment_source_id);
CREATE INDEX order_notes_order ON order_notes (order_id);
