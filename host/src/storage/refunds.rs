//! Refunds and their lines.

use sqlx::{AnyConnection, Row};

use super::{StorageError, now_ms};

/// A refund as stored. Statuses are the reference's strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub id: i64,
    pub order_id: i64,
    pub status: String,
    pub total_minor: i64,
    pub currency: String,
    pub lines: Vec<RefundLineRecord>,
}

/// One refunded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundLineRecord {
    pub line_id: u64,
    pub status: String,
    pub amount_minor: i64,
    /// Why revocation failed, or the module's note.
    pub reason: Option<String>,
}

/// Inserts the refund and its lines; returns its id.
pub async fn insert_refund(connection: &mut AnyConnection, refund: &RefundRecord) -> Result<i64, StorageError> {
    let row = sqlx::query(
        "INSERT INTO refunds (order_id, status, total_minor, currency, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(refund.order_id)
    .bind(&refund.status)
    .bind(refund.total_minor)
    .bind(&refund.currency)
    .bind(now_ms())
    .fetch_one(&mut *connection)
    .await?;
    let id: i64 = row.try_get("id")?;
    for line in &refund.lines {
        sqlx::query("INSERT INTO refund_lines (refund_id, line_id, status, amount_minor, reason) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(line.line_id as i64)
            .bind(&line.status)
            .bind(line.amount_minor)
            .bind(line.reason.as_deref())
            .execute(&mut *connection)
            .await?;
    }
    Ok(id)
}

/// Stores the refund's and its lines' statuses and reasons.
pub async fn update_refund(connection: &mut AnyConnection, refund: &RefundRecord) -> Result<(), StorageError> {
    sqlx::query("UPDATE refunds SET status = $1 WHERE id = $2")
        .bind(&refund.status)
        .bind(refund.id)
        .execute(&mut *connection)
        .await?;
    for line in &refund.lines {
        sqlx::query("UPDATE refund_lines SET status = $1, reason = $2 WHERE refund_id = $3 AND line_id = $4")
            .bind(&line.status)
            .bind(line.reason.as_deref())
            .bind(refund.id)
            .bind(line.line_id as i64)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

pub async fn load_refund(connection: &mut AnyConnection, id: i64) -> Result<Option<RefundRecord>, StorageError> {
    let Some(row) = sqlx::query("SELECT id, order_id, status, total_minor, currency FROM refunds WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?
    else {
        return Ok(None);
    };
    let line_rows = sqlx::query(
        "SELECT line_id, status, amount_minor, reason FROM refund_lines WHERE refund_id = $1 ORDER BY line_id",
    )
    .bind(id)
    .fetch_all(&mut *connection)
    .await?;
    let mut lines = Vec::with_capacity(line_rows.len());
    for line in &line_rows {
        let line_id: i64 = line.try_get("line_id")?;
        lines.push(RefundLineRecord {
            line_id: line_id as u64,
            status: line.try_get("status")?,
            amount_minor: line.try_get("amount_minor")?,
            reason: line.try_get("reason")?,
        });
    }
    Ok(Some(RefundRecord {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        status: row.try_get("status")?,
        total_minor: row.try_get("total_minor")?,
        currency: row.try_get("currency")?,
        lines,
    }))
}
