//! `checkouts`: the intent of a checkout, stored before any money moves,
//! and its idempotency key.

use sqlx::AnyConnection;

use super::{StorageError, now_ms};

/// Where a checkout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutState {
    /// Recorded; the processor may or may not have charged it yet.
    Pending,
    /// Its order exists.
    Ordered,
    /// The processor said no: nothing moved.
    Declined,
    /// Its request was lost before a charge went through, and the processor
    /// has none for it: nothing moved.
    Abandoned,
}

impl CheckoutState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutState::Pending => "pending",
            CheckoutState::Ordered => "ordered",
            CheckoutState::Declined => "declined",
            CheckoutState::Abandoned => "abandoned",
        }
    }

    fn parse(text: &str) -> Result<CheckoutState, StorageError> {
        Ok(match text {
            "pending" => CheckoutState::Pending,
            "ordered" => CheckoutState::Ordered,
            "declined" => CheckoutState::Declined,
            "abandoned" => CheckoutState::Abandoned,
            other => {
                return Err(StorageError::Corrupt {
                    table: "checkouts",
                    message: format!("unknown state `{other}`"),
                });
            }
        })
    }
}

/// A checkout to record.
#[derive(Debug, Clone)]
pub struct NewCheckout<'a> {
    pub idempotency_key: Option<&'a str>,
    pub request_hash: &'a str,
    /// The validated request as JSON, without the payment token.
    pub request: &'a str,
    pub processor: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub payment_source_id: i64,
    /// The name of the API token that placed it.
    pub placed_by: Option<&'a str>,
}

/// A checkout as stored.
#[derive(Debug, Clone)]
pub struct CheckoutRecord {
    pub id: i64,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub request: String,
    pub processor: String,
    pub amount_minor: i64,
    pub currency: String,
    pub payment_source_id: i64,
    pub state: CheckoutState,
    pub order_number: Option<String>,
    pub failure: Option<String>,
    /// The name of the API token that placed it; None before migration 4.
    pub placed_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CheckoutRow {
    id: i64,
    idempotency_key: Option<String>,
    request_hash: String,
    request: String,
    processor: String,
    amount_minor: i64,
    currency: String,
    payment_source_id: i64,
    state: String,
    order_number: Option<String>,
    failure: Option<String>,
    placed_by: Option<String>,
}

impl TryFrom<CheckoutRow> for CheckoutRecord {
    type Error = StorageError;

    fn try_from(row: CheckoutRow) -> Result<CheckoutRecord, StorageError> {
        Ok(CheckoutRecord {
            id: row.id,
            idempotency_key: row.idempotency_key,
            request_hash: row.request_hash,
            request: row.request,
            processor: row.processor,
            amount_minor: row.amount_minor,
            currency: row.currency,
            payment_source_id: row.payment_source_id,
            state: CheckoutState::parse(&row.state)?,
            order_number: row.order_number,
            failure: row.failure,
            placed_by: row.placed_by,
        })
    }
}

const COLUMNS: &str = "id, idempotency_key, request_hash, request, processor, amount_minor, currency, \
                       payment_source_id, state, order_number, failure, placed_by";

/// Records a `pending` checkout; returns its id. Fails with a unique
/// violation when another checkout holds the key.
pub async fn insert_checkout(connection: &mut AnyConnection, checkout: &NewCheckout<'_>) -> Result<i64, StorageError> {
    let id = sqlx::query_scalar(
        "INSERT INTO checkouts (idempotency_key, request_hash, request, processor, amount_minor, currency,
             payment_source_id, placed_by, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) RETURNING id",
    )
    .bind(checkout.idempotency_key)
    .bind(checkout.request_hash)
    .bind(checkout.request)
    .bind(checkout.processor)
    .bind(checkout.amount_minor)
    .bind(checkout.currency)
    .bind(checkout.payment_source_id)
    .bind(checkout.placed_by)
    .bind(now_ms())
    .fetch_one(&mut *connection)
    .await?;
    Ok(id)
}

/// The checkout holding idempotency key `key`, if any.
pub async fn checkout_by_key(connection: &mut AnyConnection, key: &str) -> Result<Option<CheckoutRecord>, StorageError> {
    let row: Option<CheckoutRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM checkouts WHERE idempotency_key = $1"))
        .bind(key)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(CheckoutRecord::try_from).transpose()
}

/// Checkout `id`.
pub async fn load_checkout(connection: &mut AnyConnection, id: i64) -> Result<Option<CheckoutRecord>, StorageError> {
    let row: Option<CheckoutRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM checkouts WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(CheckoutRecord::try_from).transpose()
}

/// Takes checkout `id` for the caller's transaction if it is still
/// `pending`: a row lock on PostgreSQL, the write lock on SQLite. Whoever
/// holds it is the only one who may charge it, complete it or abandon it
/// until the transaction ends. False when it is no longer pending.
pub async fn hold_pending_checkout(connection: &mut AnyConnection, id: i64) -> Result<bool, StorageError> {
    let result = sqlx::query("UPDATE checkouts SET updated_at = $1 WHERE id = $2 AND state = 'pending'")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Records the order checkout `id` made.
pub async fn mark_checkout_ordered(connection: &mut AnyConnection, id: i64, order_number: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE checkouts SET state = 'ordered', order_number = $1, updated_at = $2 WHERE id = $3")
        .bind(order_number)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Records that checkout `id` moved no money (`Declined` or `Abandoned`)
/// and why; its idempotency key is free for another try.
pub async fn mark_checkout_unpaid(
    connection: &mut AnyConnection,
    id: i64,
    state: CheckoutState,
    failure: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE checkouts SET state = $1, failure = $2, given_up_key = idempotency_key, idempotency_key = NULL,
             updated_at = $3
         WHERE id = $4",
    )
    .bind(state.as_str())
    .bind(failure)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Makes checkout `id` pending again if it was abandoned (its request
/// learned that its charge went through after all), with the key it gave
/// up unless another checkout took it meanwhile. True when it was
/// abandoned.
pub async fn reopen_abandoned_checkout(connection: &mut AnyConnection, id: i64) -> Result<bool, StorageError> {
    let result = sqlx::query(
        "UPDATE checkouts SET state = 'pending', updated_at = $1,
             idempotency_key = CASE WHEN given_up_key IS NOT NULL AND NOT EXISTS
                 (SELECT 1 FROM checkouts AS other WHERE other.idempotency_key = checkouts.given_up_key)
                 THEN given_up_key END
         WHERE id = $2 AND state = 'abandoned'",
    )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *connection)
        .await?;
    if result.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE payment_sources SET state = 'pending' WHERE id = (SELECT payment_source_id FROM checkouts WHERE id = $1)")
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(true)
}
