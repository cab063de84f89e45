-- The orders schema. The SQLite migration creates the same tables and
-- columns; only identity columns are spelled differently.
-- Money: integer minor units + ISO 4217 code. Times: unix milliseconds,
-- except date_placed (RFC 3339 text, as modules see it). JSON: text.

CREATE TABLE products (
    sku          TEXT PRIMARY KEY,
    product_type TEXT NOT NULL,
    title        TEXT NOT NULL,
    price_minor  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    attributes   TEXT NOT NULL
);

-- Order numbers: one counter per prefix, bumped in the order's transaction.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE payment_sources (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    processor       TEXT NOT NULL,
    reference       TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE payment_events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_source_id BIGINT NOT NULL REFERENCES payment_sources (id),
    event_type        TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    reference         TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE orders (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number            TEXT NOT NULL UNIQUE,
    username          TEXT NOT NULL,
    email             TEXT NOT NULL,
    date_placed       TEXT NOT NULL,
    currency          TEXT NOT NULL,
    total_minor       BIGINT NOT NULL,
    shipping_method   TEXT NOT NULL,
    shipping_minor    BIGINT NOT NULL,
    billing_address   TEXT NOT NULL,
    email_opt_in      BIGINT NOT NULL, -- 0 or 1: the Any driver reads no SQLite BOOLEAN
    basket_attributes TEXT NOT NULL,
    status            TEXT NOT NULL,
    payment_source_id BIGINT REFERENCES payment_sources (id),
    created_at        BIGINT NOT NULL
);
CREATE INDEX orders_username ON orders (username);
CREATE INDEX orders_status ON orders (status);

CREATE TABLE lines (
    order_id           BIGINT NOT NULL REFERENCES orders (id),
    line_id            BIGINT NOT NULL,
    sku                TEXT NOT NULL,
    product_type       TEXT NOT NULL,
    title              TEXT NOT NULL,
    product_attributes TEXT NOT NULL,
    quantity           BIGINT NOT NULL,
    unit_price_minor   BIGINT NOT NULL,
    status             TEXT NOT NULL,
    fulfilled_by       TEXT,
    attributes         TEXT NOT NULL,
    PRIMARY KEY (order_id, line_id)
);

CREATE TABLE order_notes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL,
    line_id    BIGINT,
    module     TEXT,
    created_at BIGINT NOT NULL
);

-- One row per checkout attempt key: the body's hash, and the order once
-- made (or why none was made after payment was collected).
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    order_number TEXT,
    failure      TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE refunds (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     BIGINT NOT NULL REFERENCES orders (id),
    status       TEXT NOT NULL,
    total_minor  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE refund_lines (
    refund_id    BIGINT NOT NULL REFERENCES refunds (id),
    line_id      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    reason       TEXT,
    PRIMARY KEY (refund_id, line_id)
);

-- Append-only: every attempt to fulfill a line.
CREATE TABLE fulfillment_attempts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    line_id    BIGINT NOT NULL,
    module     TEXT,
    outcome    TEXT NOT NULL,
    message    TEXT,
    elapsed_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX fulfillment_attempts_order ON fulfillment_attempts (order_id);
