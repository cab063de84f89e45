//! Checkout idempotency keys: one order per key, one charge per key.

use sqlx::{AnyConnection, Row};

use super::{StorageError, now_ms};

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new and now ours.
    Claimed,
    /// Another request used the key with this body hash; its order, if it
    /// got that far, or why it made none after taking payment.
    Existing {
        request_hash: String,
        order_number: Option<String>,
        failure: Option<String>,
    },
}

/// Claims `key` for a request whose body hashes to `request_hash`.
pub async fn claim_idempotency_key(
    connection: &mut AnyConnection,
    key: &str,
    request_hash: &str,
) -> Result<KeyClaim, StorageError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(request_hash)
    .bind(now_ms())
    .execute(&mut *connection)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(KeyClaim::Claimed);
    }
    let row = sqlx::query("SELECT request_hash, order_number, failure FROM idempotency_keys WHERE key = $1")
        .bind(key)
        .fetch_one(&mut *connection)
        .await?;
    Ok(KeyClaim::Existing {
        request_hash: row.try_get("request_hash")?,
        order_number: row.try_get("order_number")?,
        failure: row.try_get("failure")?,
    })
}

/// Records the order made under `key`.
pub async fn set_key_order(connection: &mut AnyConnection, key: &str, order_number: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE idempotency_keys SET order_number = $1 WHERE key = $2")
        .bind(order_number)
        .bind(key)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Records that the request under `key` took payment but made no order, so
/// that a retry is refused at once (and never charges again).
pub async fn mark_key_failed(connection: &mut AnyConnection, key: &str, failure: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE idempotency_keys SET failure = $1 WHERE key = $2")
        .bind(failure)
        .bind(key)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Frees `key` after a request that charged nothing (a decline, a
/// validation error), so that the client may try again with it.
pub async fn release_idempotency_key(connection: &mut AnyConnection, key: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND order_number IS NULL")
        .bind(key)
        .execute(&mut *connection)
        .await?;
    Ok(())
}
