//! Refunds, their lines and their credit.

use sqlx::{AnyConnection, Row};

use super::{StorageError, now_ms};
use crate::model::{LineId, RefundLineStatus, RefundStatus};

/// Where a refund's credit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditState {
    /// Not asked for yet.
    None,
    /// Recorded before the processor is called: the processor may or may
    /// not have credited it (its idempotency key makes asking again safe).
    Intended,
    /// The processor credited it; recorded with the refund's new status.
    Done,
    /// The processor refused it: nothing moved.
    Failed,
}

impl CreditState {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditState::None => "none",
            CreditState::Intended => "intended",
            CreditState::Done => "done",
            CreditState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<CreditState, StorageError> {
        Ok(match text {
            "none" => CreditState::None,
            "intended" => CreditState::Intended,
            "done" => CreditState::Done,
            "failed" => CreditState::Failed,
            other => return Err(corrupt(format!("unknown credit state `{other}`"))),
        })
    }
}

fn corrupt(message: String) -> StorageError {
    StorageError::Corrupt { table: "refunds", message }
}

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub id: i64,
    pub order_id: i64,
    pub order_number: String,
    pub status: RefundStatus,
    pub total_minor: i64,
    pub currency: String,
    pub credit: CreditState,
    /// What the credit is for (set when it is intended).
    pub credit_minor: i64,
    /// The processor's reference of the credit, once done.
    pub credit_reference: Option<String>,
    /// Whether approval revokes the lines (`approve`) or only credits
    /// (`approve_payment_only`).
    pub revoke: bool,
    pub lines: Vec<RefundLineRecord>,
}

/// One refunded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundLineRecord {
    pub line_id: LineId,
    pub status: RefundLineStatus,
    pub amount_minor: i64,
    /// Why revocation failed, or the module's note.
    pub reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    id: i64,
    order_id: i64,
    order_number: String,
    status: String,
    total_minor: i64,
    currency: String,
    credit_state: String,
    credit_minor: i64,
    credit_reference: Option<String>,
    revoke: i64,
}

#[derive(sqlx::FromRow)]
struct RefundLineRow {
    line_id: i64,
    status: String,
    amount_minor: i64,
    reason: Option<String>,
}

/// Inserts the refund and its lines; returns its id.
pub async fn insert_refund(connection: &mut AnyConnection, refund: &RefundRecord) -> Result<i64, StorageError> {
    let row = sqlx::query(
        "INSERT INTO refunds (order_id, status, total_minor, currency, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(refund.order_id)
    .bind(refund.status.as_str())
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
            .bind(line.status.as_str())
            .bind(line.amount_minor)
            .bind(line.reason.as_deref())
            .execute(&mut *connection)
            .await?;
    }
    Ok(id)
}

/// Stores the refund's status, credit and revoke flag, and its lines'
/// statuses and reasons.
pub async fn update_refund(connection: &mut AnyConnection, refund: &RefundRecord) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE refunds SET status = $1, credit_state = $2, credit_minor = $3, credit_reference = $4, revoke = $5
         WHERE id = $6",
    )
    .bind(refund.status.as_str())
    .bind(refund.credit.as_str())
    .bind(refund.credit_minor)
    .bind(refund.credit_reference.as_deref())
    .bind(i64::from(refund.revoke))
    .bind(refund.id)
    .execute(&mut *connection)
    .await?;
    for line in &refund.lines {
        sqlx::query("UPDATE refund_lines SET status = $1, reason = $2 WHERE refund_id = $3 AND line_id = $4")
            .bind(line.status.as_str())
            .bind(line.reason.as_deref())
            .bind(refund.id)
            .bind(line.line_id as i64)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

/// Takes refund `id` for the caller's transaction (a row lock on
/// PostgreSQL, the write lock on SQLite) and reads it: approvals of one
/// refund, from any host, run one at a time. None when there is no such
/// refund.
pub async fn hold_refund(connection: &mut AnyConnection, id: i64) -> Result<Option<RefundRecord>, StorageError> {
    let held = sqlx::query("UPDATE refunds SET status = status WHERE id = $1")
        .bind(id)
        .execute(&mut *connection)
        .await?;
    if held.rows_affected() == 0 {
        return Ok(None);
    }
    load_refund(connection, id).await
}

/// Refund `id`, with its order's number and its lines.
pub async fn load_refund(connection: &mut AnyConnection, id: i64) -> Result<Option<RefundRecord>, StorageError> {
    let row: Option<RefundRow> = sqlx::query_as(
        "SELECT refunds.id, refunds.order_id, orders.number AS order_number, refunds.status, refunds.total_minor,
                refunds.currency, refunds.credit_state, refunds.credit_minor, refunds.credit_reference, refunds.revoke
         FROM refunds JOIN orders ON orders.id = refunds.order_id WHERE refunds.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let line_rows: Vec<RefundLineRow> = sqlx::query_as(
        "SELECT line_id, status, amount_minor, reason FROM refund_lines WHERE refund_id = $1 ORDER BY line_id",
    )
    .bind(id)
    .fetch_all(&mut *connection)
    .await?;
    record(row, line_rows).map(Some)
}

/// A refund from its row and its lines' rows.
fn record(row: RefundRow, line_rows: Vec<RefundLineRow>) -> Result<RefundRecord, StorageError> {
    let lines = line_rows
        .into_iter()
        .map(|line| {
            Ok(RefundLineRecord {
                line_id: line.line_id as LineId,
                status: RefundLineStatus::parse(&line.status)
                    .ok_or_else(|| corrupt(format!("unknown refund line status `{}`", line.status)))?,
                amount_minor: line.amount_minor,
                reason: line.reason,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(RefundRecord {
        id: row.id,
        order_id: row.order_id,
        order_number: row.order_number,
        status: RefundStatus::parse(&row.status).ok_or_else(|| corrupt(format!("unknown refund status `{}`", row.status)))?,
        total_minor: row.total_minor,
        currency: row.currency,
        credit: CreditState::parse(&row.credit_state)?,
        credit_minor: row.credit_minor,
        credit_reference: row.credit_reference,
        revoke: row.revoke != 0,
        lines,
    })
}

/// A page of an order's refunds, newest first, and how many it has.
#[derive(Debug, Clone)]
pub struct RefundPage {
    pub count: u64,
    pub refunds: Vec<RefundRecord>,
}

/// Page `page` (from 1) of `page_size` refunds of order `number`, newest
/// first, in three queries whatever the size; None when there is no such
/// order.
pub async fn refunds_of_order(
    connection: &mut AnyConnection,
    number: &str,
    page: u64,
    page_size: u64,
) -> Result<Option<RefundPage>, StorageError> {
    let order_id: Option<i64> = sqlx::query_scalar("SELECT id FROM orders WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(order_id) = order_id else {
        return Ok(None);
    };
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refunds WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&mut *connection)
        .await?;
    let offset = page.saturating_sub(1).saturating_mul(page_size);
    let rows: Vec<RefundRow> = sqlx::query_as(
        "SELECT refunds.id, refunds.order_id, orders.number AS order_number, refunds.status, refunds.total_minor,
                refunds.currency, refunds.credit_state, refunds.credit_minor, refunds.credit_reference, refunds.revoke
         FROM refunds JOIN orders ON orders.id = refunds.order_id WHERE refunds.order_id = $1
         ORDER BY refunds.id DESC LIMIT $2 OFFSET $3",
    )
    .bind(order_id)
    .bind(i64::try_from(page_size).unwrap_or(i64::MAX))
    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
    .fetch_all(&mut *connection)
    .await?;
    let mut lines: std::collections::HashMap<i64, Vec<RefundLineRow>> = std::collections::HashMap::new();
    if !rows.is_empty() {
        let sql = format!(
            "SELECT refund_id, line_id, status, amount_minor, reason FROM refund_lines WHERE refund_id IN ({})
             ORDER BY refund_id, line_id",
            super::placeholders(1, rows.len())
        );
        let mut query = sqlx::query_as::<_, RefundLineOfRow>(&sql);
        for row in &rows {
            query = query.bind(row.id);
        }
        for line in query.fetch_all(&mut *connection).await? {
            lines.entry(line.refund_id).or_default().push(line.line);
        }
    }
    let refunds = rows
        .into_iter()
        .map(|row| {
            let line_rows = lines.remove(&row.id).unwrap_or_default();
            record(row, line_rows)
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(Some(RefundPage {
        count: count.max(0) as u64,
        refunds,
    }))
}

#[derive(sqlx::FromRow)]
struct RefundLineOfRow {
    refund_id: i64,
    #[sqlx(flatten)]
    line: RefundLineRow,
}

/// Whether line `line_id` of order `order_id` is in a refund that was not
/// denied.
pub async fn line_in_refund(connection: &mut AnyConnection, order_id: i64, line_id: LineId) -> Result<bool, StorageError> {
    let taken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refund_lines JOIN refunds ON refunds.id = refund_lines.refund_id
         WHERE refunds.order_id = $1 AND refund_lines.line_id = $2 AND refund_lines.status <> 'Denied'",
    )
    .bind(order_id)
    .bind(line_id as i64)
    .fetch_one(&mut *connection)
    .await?;
    Ok(taken > 0)
}

/// What the credits of order `order_id` have moved or may be moving: the
/// `Refunded` events of its payment plus the credits intended but not yet
/// done, other than refund `except`'s.
pub async fn credits_taken(
    connection: &mut AnyConnection,
    order_id: i64,
    payment_source_id: i64,
    except: i64,
) -> Result<i64, StorageError> {
    let refunded: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payment_events
         WHERE payment_source_id = $1 AND event_type = 'Refunded'",
    )
    .bind(payment_source_id)
    .fetch_one(&mut *connection)
    .await?;
    let intended: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(credit_minor), 0) AS BIGINT) FROM refunds
         WHERE order_id = $1 AND credit_state = 'intended' AND id <> $2",
    )
    .bind(order_id)
    .bind(except)
    .fetch_one(&mut *connection)
    .await?;
    Ok(refunded + intended)
}
