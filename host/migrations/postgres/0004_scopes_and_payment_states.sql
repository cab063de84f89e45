-- Who may read what, and payment sources that say where they stand
-- (issue 10). Same columns on SQLite and PostgreSQL.

-- The `name` of the `[[api.tokens]]` entry whose token placed the
-- checkout, and so its order. A token with `orders = "own"` sees only the
-- orders its name placed. NULL: placed before this migration, by a token
-- no longer known; such orders are visible to `orders = "all"` tokens only.
ALTER TABLE checkouts ADD COLUMN placed_by TEXT;
ALTER TABLE orders ADD COLUMN placed_by TEXT;
-- The lists of an `orders = "own"` token: its orders, newest first.
CREATE INDEX orders_placed_by ON orders (placed_by, id);

-- Where a payment source stands: pending (recorded before the processor
-- is asked; money may have moved), paid, refused (the processor declined
-- or failed before charging: nothing moved) or abandoned (its request was
-- lost and the processor has no charge for it: nothing moved). The default
-- is the cautious one, for a source an older host records during a rolling
-- upgrade; the sources made before this migration take the state of their
-- checkout, and those without one (older than checkouts) were all paid.
ALTER TABLE payment_sources ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'
    CHECK (state IN ('pending', 'paid', 'refused', 'abandoned'));
UPDATE payment_sources SET state = 'paid'
WHERE id NOT IN (SELECT payment_source_id FROM checkouts WHERE state <> 'ordered');
UPDATE payment_sources SET state = 'refused'
WHERE id IN (SELECT payment_source_id FROM checkouts WHERE state = 'declined');
UPDATE payment_sources SET state = 'abandoned'
WHERE id IN (SELECT payment_source_id FROM checkouts WHERE state = 'abandoned');
