//! Orders, their lines, notes and fulfillment attempts.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::products::{from_json, to_json};
use super::{StorageError, now_ms, placeholders};
use crate::model::{
    Address, Currency, Line, LineStatus, Money, NoteKind, Order, OrderNote, OrderStatus, Product, Shipping, User,
};

/// An order as stored, with what only storage and the API need.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    /// The row id (0 before the order is inserted).
    pub id: i64,
    pub order: Order,
    pub payment_source_id: Option<i64>,
    /// The name of the API token that placed it; None for orders placed
    /// before that was recorded (migration 4).
    pub placed_by: Option<String>,
    /// How many of `order.notes` are already stored.
    pub stored_notes: usize,
}

/// Bumps and returns the counter of `prefix`, starting at `first`.
pub async fn next_order_number(connection: &mut AnyConnection, prefix: &str, first: u64) -> Result<String, StorageError> {
    let first = i64::try_from(first).unwrap_or(i64::MAX);
    let row = sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(format!("order-number:{prefix}"))
    .bind(first)
    .fetch_one(&mut *connection)
    .await?;
    let value: i64 = row.try_get("value")?;
    Ok(format!("{prefix}-{value}"))
}

/// Inserts the order with its lines and notes; returns its row id.
pub async fn insert_order(connection: &mut AnyConnection, stored: &StoredOrder) -> Result<i64, StorageError> {
    let order = &stored.order;
    let row = sqlx::query(
        "INSERT INTO orders (number, username, email, date_placed, currency, total_minor, shipping_method,
             shipping_minor, billing_address, shipping_address, email_opt_in, basket_attributes, status,
             payment_source_id, placed_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    )
    .bind(&order.number)
    .bind(&order.user.username)
    .bind(&order.user.email)
    .bind(order.date_placed_text())
    .bind(order.currency.code())
    .bind(order.total.minor_units)
    .bind(&order.shipping.method)
    .bind(order.shipping.charge.minor_units)
    // NOT NULL since migration 1: no address is JSON `null` there.
    .bind(to_json(&order.billing_address))
    .bind(order.shipping_address.as_ref().map(to_json))
    .bind(i64::from(order.email_opt_in))
    .bind(to_json(&order.basket_attributes))
    .bind(order.status.as_str())
    .bind(stored.payment_source_id)
    .bind(stored.placed_by.as_deref())
    // When it was placed, to the millisecond: the dashboard filters by
    // this column and shows `date_placed`, and the two must agree.
    .bind(i64::try_from(order.date_placed.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
    .fetch_one(&mut *connection)
    .await?;
    let order_id: i64 = row.try_get("id")?;
    for line in &order.lines {
        sqlx::query(
            "INSERT INTO lines (order_id, line_id, sku, product_type, title, product_attributes, quantity,
                 unit_price_minor, status, fulfilled_by, attributes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(order_id)
        .bind(line.id as i64)
        .bind(&line.product.sku)
        .bind(&line.product.product_type)
        .bind(&line.product.title)
        .bind(to_json(&line.product.attributes))
        .bind(i64::from(line.quantity))
        .bind(line.unit_price.minor_units)
        .bind(line.status.as_str())
        .bind(line.fulfilled_by.as_deref())
        .bind(to_json(&line.attributes))
        .execute(&mut *connection)
        .await?;
    }
    insert_notes(connection, order_id, &order.notes).await?;
    Ok(order_id)
}

async fn insert_notes(connection: &mut AnyConnection, order_id: i64, notes: &[OrderNote]) -> Result<(), StorageError> {
    for note in notes {
        sqlx::query(
            "INSERT INTO order_notes (order_id, kind, message, line_id, module, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order_id)
        .bind(match note.kind {
            NoteKind::Info => "Info",
            NoteKind::Error => "Error",
        })
        .bind(&note.message)
        .bind(note.line_id.map(|id| id as i64))
        .bind(note.module.as_deref())
        .bind(now_ms())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Stores the notes added to `stored` since it was loaded or last saved.
pub async fn save_notes(connection: &mut AnyConnection, stored: &mut StoredOrder) -> Result<(), StorageError> {
    let notes = &stored.order.notes;
    insert_notes(connection, stored.id, &notes[stored.stored_notes.min(notes.len())..]).await?;
    stored.stored_notes = notes.len();
    Ok(())
}

/// One row of the attempt log: a line's attempt in one dispatch.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    pub line_id: u64,
    pub module: Option<String>,
    /// The line's status after the attempt.
    pub outcome: &'static str,
    pub message: Option<String>,
    pub elapsed_ms: i64,
}

/// Takes order `id` for the caller's transaction (a row lock on
/// PostgreSQL, the write lock on SQLite): changes to one order's refunds
/// run one at a time, from any host. False when there is no such order.
pub async fn hold_order(connection: &mut AnyConnection, id: i64) -> Result<bool, StorageError> {
    let held = sqlx::query("UPDATE orders SET status = status WHERE id = $1")
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(held.rows_affected() == 1)
}

/// Stores what a dispatch changed: the order and line statuses, owners and
/// attributes, the new notes, and one attempt-log row per line attempt.
pub async fn save_fulfillment(
    connection: &mut AnyConnection,
    stored: &mut StoredOrder,
    attempts: &[AttemptLog],
) -> Result<(), StorageError> {
    let order = &stored.order;
    sqlx::query("UPDATE orders SET status = $1 WHERE id = $2")
        .bind(order.status.as_str())
        .bind(stored.id)
        .execute(&mut *connection)
        .await?;
    for line in &order.lines {
        sqlx::query("UPDATE lines SET status = $1, fulfilled_by = $2, attributes = $3 WHERE order_id = $4 AND line_id = $5")
            .bind(line.status.as_str())
            .bind(line.fulfilled_by.as_deref())
            .bind(to_json(&line.attributes))
            .bind(stored.id)
            .bind(line.id as i64)
            .execute(&mut *connection)
            .await?;
    }
    insert_notes(connection, stored.id, &order.notes[stored.stored_notes.min(order.notes.len())..]).await?;
    stored.stored_notes = order.notes.len();
    for attempt in attempts {
        sqlx::query(
            "INSERT INTO fulfillment_attempts (order_id, line_id, module, outcome, message, elapsed_ms, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(stored.id)
        .bind(attempt.line_id as i64)
        .bind(attempt.module.as_deref())
        .bind(attempt.outcome)
        .bind(attempt.message.as_deref())
        .bind(attempt.elapsed_ms)
        .bind(now_ms())
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

fn corrupt(message: impl ToString) -> StorageError {
    StorageError::Corrupt {
        table: "orders",
        message: message.to_string(),
    }
}

fn parse_status<T: serde::de::DeserializeOwned>(text: String) -> Result<T, StorageError> {
    serde_json::from_value(Value::String(text)).map_err(corrupt)
}

const ORDER_COLUMNS: &str = "id, number, username, email, date_placed, currency, total_minor, shipping_method, \
                             shipping_minor, billing_address, shipping_address, email_opt_in, basket_attributes, status, \
                             payment_source_id, placed_by";

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    number: String,
    username: String,
    email: String,
    date_placed: String,
    currency: String,
    total_minor: i64,
    shipping_method: String,
    shipping_minor: i64,
    /// JSON: an [`Address`], `null`, or (rows from before migration 6)
    /// the free object the storefront sent.
    billing_address: String,
    /// JSON of an [`Address`]; NULL for none (and for rows from before
    /// migration 6).
    shipping_address: Option<String>,
    email_opt_in: i64,
    basket_attributes: String,
    status: String,
    payment_source_id: Option<i64>,
    placed_by: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    order_id: i64,
    line_id: i64,
    sku: String,
    product_type: String,
    title: String,
    product_attributes: String,
    quantity: i64,
    unit_price_minor: i64,
    status: String,
    fulfilled_by: Option<String>,
    attributes: String,
}

#[derive(sqlx::FromRow)]
struct NoteRow {
    order_id: i64,
    kind: String,
    message: String,
    line_id: Option<i64>,
    module: Option<String>,
}

impl OrderRow {
    fn into_stored(self, lines: Vec<LineRow>, notes: Vec<NoteRow>) -> Result<StoredOrder, StorageError> {
        let currency: Currency = self.currency.parse().map_err(corrupt)?;
        let money = |minor_units: i64| Money { minor_units, currency };
        let date_placed = time::OffsetDateTime::parse(&self.date_placed, &time::format_description::well_known::Rfc3339)
            .map_err(corrupt)?;
        let lines = lines
            .into_iter()
            .map(|line| {
                Ok(Line {
                    id: line.line_id as u64,
                    product: Product {
                        sku: line.sku,
                        product_type: line.product_type,
                        title: line.title,
                        attributes: from_json(line.product_attributes, "lines")?,
                    },
                    quantity: u32::try_from(line.quantity).map_err(corrupt)?,
                    unit_price: money(line.unit_price_minor),
                    status: parse_status::<LineStatus>(line.status)?,
                    fulfilled_by: line.fulfilled_by,
                    attributes: from_json(line.attributes, "lines")?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let notes: Vec<OrderNote> = notes
            .into_iter()
            .map(|note| OrderNote {
                kind: if note.kind == "Error" { NoteKind::Error } else { NoteKind::Info },
                message: note.message,
                line_id: note.line_id.map(|id| id as u64),
                module: note.module,
            })
            .collect();
        let stored_notes = notes.len();
        let billing_address: Value = from_json(self.billing_address, "orders")?;
        let shipping_address: Option<Address> = match self.shipping_address {
            Some(json) => from_json(json, "orders")?,
            None => None,
        };
        Ok(StoredOrder {
            id: self.id,
            order: Order {
                number: self.number,
                user: User {
                    username: self.username,
                    email: self.email,
                },
                date_placed,
                currency,
                total: money(self.total_minor),
                email_opt_in: self.email_opt_in != 0,
                basket_attributes: from_json(self.basket_attributes, "orders")?,
                shipping: Shipping {
                    method: self.shipping_method,
                    charge: money(self.shipping_minor),
                },
                billing_address: Address::from_stored_json(&billing_address),
                shipping_address,
                status: parse_status::<OrderStatus>(self.status)?,
                lines,
                notes,
            },
            payment_source_id: self.payment_source_id,
            placed_by: self.placed_by,
            stored_notes,
        })
    }
}

/// The orders of `rows` with their lines (by id) and notes (oldest first):
/// two more queries, however many orders.
async fn with_lines_and_notes(connection: &mut AnyConnection, rows: Vec<OrderRow>) -> Result<Vec<StoredOrder>, StorageError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let list = placeholders(1, ids.len());
    let lines_sql = format!(
        "SELECT order_id, line_id, sku, product_type, title, product_attributes, quantity, unit_price_minor, status,
                fulfilled_by, attributes
         FROM lines WHERE order_id IN ({list}) ORDER BY order_id, line_id"
    );
    let mut lines_query = sqlx::query_as::<_, LineRow>(&lines_sql);
    for id in &ids {
        lines_query = lines_query.bind(*id);
    }
    let mut lines: HashMap<i64, Vec<LineRow>> = HashMap::new();
    for line in lines_query.fetch_all(&mut *connection).await? {
        lines.entry(line.order_id).or_default().push(line);
    }
    let notes_sql =
        format!("SELECT order_id, kind, message, line_id, module FROM order_notes WHERE order_id IN ({list}) ORDER BY id");
    let mut notes_query = sqlx::query_as::<_, NoteRow>(&notes_sql);
    for id in &ids {
        notes_query = notes_query.bind(*id);
    }
    let mut notes: HashMap<i64, Vec<NoteRow>> = HashMap::new();
    for note in notes_query.fetch_all(&mut *connection).await? {
        notes.entry(note.order_id).or_default().push(note);
    }
    rows.into_iter()
        .map(|row| {
            let id = row.id;
            row.into_stored(lines.remove(&id).unwrap_or_default(), notes.remove(&id).unwrap_or_default())
        })
        .collect()
}

/// The order numbered `number`, with its lines (by id) and notes (oldest first).
pub async fn load_order(connection: &mut AnyConnection, number: &str) -> Result<Option<StoredOrder>, StorageError> {
    let row: Option<OrderRow> = sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE number = $1"))
        .bind(number)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(with_lines_and_notes(connection, vec![row]).await?.pop())
}

/// Which orders to list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub username: Option<String>,
    /// Only the order of this number.
    pub number: Option<String>,
    /// Only orders placed at or after this instant (unix ms)...
    pub placed_from_ms: Option<i64>,
    /// ... and before this one.
    pub placed_before_ms: Option<i64>,
}

/// Which orders a caller may see at all (its token's `orders` and `user`):
/// an order outside it is, to that caller, an order that does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderScope {
    /// Only the orders the token of this name placed (not those whose
    /// placer is unknown).
    pub placed_by: Option<String>,
    /// Only this user's orders.
    pub username: Option<String>,
}

impl OrderScope {
    /// Every order.
    pub fn all() -> OrderScope {
        OrderScope::default()
    }

    /// Whether the caller may see `stored`.
    pub fn covers(&self, stored: &StoredOrder) -> bool {
        let placed = self.placed_by.as_ref().is_none_or(|name| stored.placed_by.as_ref() == Some(name));
        let user = self.username.as_ref().is_none_or(|username| *username == stored.order.user.username);
        placed && user
    }
}

/// One page of orders, newest first, and how many match in all.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub count: u64,
    pub orders: Vec<StoredOrder>,
}

/// Page `page` (from 1) of `page_size` orders within `scope` matching
/// `filter`: four queries, whatever the page size.
pub async fn list_orders(
    connection: &mut AnyConnection,
    scope: &OrderScope,
    filter: &OrderFilter,
    page: u64,
    page_size: u64,
) -> Result<OrderPage, StorageError> {
    enum Value {
        Text(String),
        Number(i64),
    }
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    for (column, value) in [
        ("placed_by", &scope.placed_by),
        ("username", &scope.username),
        ("status", &filter.status),
        ("username", &filter.username),
        ("number", &filter.number),
    ] {
        if let Some(value) = value {
            values.push(Value::Text(value.clone()));
            conditions.push(format!("{column} = ${}", values.len()));
        }
    }
    for (condition, value) in [("created_at >=", filter.placed_from_ms), ("created_at <", filter.placed_before_ms)] {
        if let Some(value) = value {
            values.push(Value::Number(value));
            conditions.push(format!("{condition} ${}", values.len()));
        }
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) AS count FROM orders {where_clause}");
    let mut count_query = sqlx::query(&count_sql);
    for value in &values {
        count_query = match value {
            Value::Text(text) => count_query.bind(text.clone()),
            Value::Number(number) => count_query.bind(*number),
        };
    }
    let count: i64 = count_query.fetch_one(&mut *connection).await?.try_get("count")?;

    let offset = page.saturating_sub(1).saturating_mul(page_size);
    let page_sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders {where_clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
        values.len() + 1,
        values.len() + 2
    );
    let mut page_query = sqlx::query_as::<_, OrderRow>(&page_sql);
    for value in &values {
        page_query = match value {
            Value::Text(text) => page_query.bind(text.clone()),
            Value::Number(number) => page_query.bind(*number),
        };
    }
    let rows = page_query
        .bind(i64::try_from(page_size).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *connection)
        .await?;
    Ok(OrderPage {
        count: count.max(0) as u64,
        orders: with_lines_and_notes(connection, rows).await?,
    })
}

/// One row of an order's attempt log: a module's attempt at one line.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptRecord {
    pub line_id: i64,
    pub module: Option<String>,
    pub outcome: String,
    pub message: Option<String>,
    pub elapsed_ms: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// The newest `limit` attempts of order `order_id`, newest first, and how
/// many it has in all.
pub async fn attempts_of_order(
    connection: &mut AnyConnection,
    order_id: i64,
    limit: u32,
) -> Result<(u64, Vec<AttemptRecord>), StorageError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fulfillment_attempts WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&mut *connection)
        .await?;
    let attempts = sqlx::query_as::<_, AttemptRecord>(
        "SELECT line_id, module, outcome, message, elapsed_ms, created_at FROM fulfillment_attempts
         WHERE order_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(order_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await?;
    Ok((count.max(0) as u64, attempts))
}
