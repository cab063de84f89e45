-- The order's shipping address (API 1.1: `shipping_address`), as the JSON
-- of an address record; NULL for none, as on every order placed before.
-- `billing_address` keeps its column: new rows hold the JSON of an address
-- record (or `null`), older rows the free object the storefront sent, which
-- the host reads for the fields an address has.
ALTER TABLE orders ADD COLUMN shipping_address TEXT;
