//! Payment sources and payment events.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::{StorageError, now_ms, placeholders};
use crate::model::Money;

/// Where a payment source stands (`payment_sources.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    /// Recorded before the processor is asked: money may have moved.
    Pending,
    /// The processor charged it.
    Paid,
    /// The processor declined it, or failed before charging: nothing moved.
    Refused,
    /// Its request was lost and the processor has no charge for it.
    Abandoned,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Pending => "pending",
            SourceState::Paid => "paid",
            SourceState::Refused => "refused",
            SourceState::Abandoned => "abandoned",
        }
    }
}

/// Records a `pending` payment source (the processor's charge to come)
/// and returns its id.
pub async fn insert_payment_source(
    connection: &mut AnyConnection,
    processor: &str,
    reference: &str,
    amount: Money,
    idempotency_key: Option<&str>,
) -> Result<i64, StorageError> {
    let row = sqlx::query(
        "INSERT INTO payment_sources (processor, reference, amount_minor, currency, idempotency_key, state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
    )
    .bind(processor)
    .bind(reference)
    .bind(amount.minor_units)
    .bind(amount.currency.code())
    .bind(idempotency_key)
    .bind(now_ms())
    .fetch_one(&mut *connection)
    .await?;
    Ok(row.try_get("id")?)
}

/// Records the processor's reference of source `id`'s charge: it is paid.
pub async fn set_payment_reference(connection: &mut AnyConnection, id: i64, reference: &str) -> Result<(), StorageError> {
    sqlx::query("UPDATE payment_sources SET reference = $1, state = 'paid' WHERE id = $2")
        .bind(reference)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Records where source `id` stands (a refusal, an abandon, a reopening).
pub async fn set_payment_state(connection: &mut AnyConnection, id: i64, state: SourceState) -> Result<(), StorageError> {
    sqlx::query("UPDATE payment_sources SET state = $1 WHERE id = $2")
        .bind(state.as_str())
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Appends a payment event (`Paid`, `Refunded`) to a source.
pub async fn insert_payment_event(
    connection: &mut AnyConnection,
    payment_source_id: i64,
    event_type: &str,
    amount_minor: i64,
    reference: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO payment_events (payment_source_id, event_type, amount_minor, reference, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(payment_source_id)
    .bind(event_type)
    .bind(amount_minor)
    .bind(reference)
    .bind(now_ms())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// A payment with what was refunded of it (the `Refunded` events).
const PAYMENT_SELECT: &str = "SELECT id, processor, reference, amount_minor,
        CAST(COALESCE((SELECT SUM(amount_minor) FROM payment_events
                       WHERE payment_source_id = payment_sources.id AND event_type = 'Refunded'), 0)
             AS BIGINT) AS refunded_minor
    FROM payment_sources";

/// An order's payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRecord {
    pub id: i64,
    pub processor: String,
    pub reference: String,
    pub amount_minor: i64,
    /// Paid minus refunded.
    pub refunded_minor: i64,
}

/// The payment of an order, if it has one.
pub async fn payment_for_order(connection: &mut AnyConnection, payment_source_id: i64) -> Result<PaymentRecord, StorageError> {
    let row: PaymentRecord = sqlx::query_as(
        &format!("{PAYMENT_SELECT} WHERE id = $1"),
    )
    .bind(payment_source_id)
    .fetch_one(&mut *connection)
    .await?;
    Ok(row)
}

/// The payments `ids`, by id: one query, however many.
pub async fn payments_by_ids(connection: &mut AnyConnection, ids: &[i64]) -> Result<HashMap<i64, PaymentRecord>, StorageError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "{PAYMENT_SELECT} WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, PaymentRecord>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let payments = query.fetch_all(&mut *connection).await?;
    Ok(payments.into_iter().map(|payment| (payment.id, payment)).collect())
}

/// One event of a payment: what the processor did with it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentEventRecord {
    /// `Paid` or `Refunded`.
    pub event_type: String,
    pub amount_minor: i64,
    pub reference: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// The events of payment `payment_source_id`, oldest first.
pub async fn payment_events(connection: &mut AnyConnection, payment_source_id: i64) -> Result<Vec<PaymentEventRecord>, StorageError> {
    Ok(sqlx::query_as::<_, PaymentEventRecord>(
        "SELECT event_type, amount_minor, reference, created_at FROM payment_events WHERE payment_source_id = $1 ORDER BY id",
    )
    .bind(payment_source_id)
    .fetch_all(&mut *connection)
    .await?)
}
