//! Orders, their lines, notes and fulfillment attempts.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::products::{from_json, to_json};
use super::{StorageError, now_ms};
use crate::model::{Currency, Line, LineStatus, Money, NoteKind, Order, OrderNote, OrderStatus, Product, User};

/// An order as stored, with what only storage and the API need.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    /// The row id (0 before the order is inserted).
    pub id: i64,
    pub order: Order,
    /// "no-shipping-required" for digital goods.
    pub shipping_method: String,
    pub shipping_charge: Money,
    /// As the storefront sent it.
    pub billing_address: Value,
    pub payment_source_id: Option<i64>,
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
             shipping_minor, billing_address, email_opt_in, basket_attributes, status, payment_source_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(&order.number)
    .bind(&order.user.username)
    .bind(&order.user.email)
    .bind(order.date_placed_text())
    .bind(order.currency.code())
    .bind(order.total.minor_units)
    .bind(&stored.shipping_method)
    .bind(stored.shipping_charge.minor_units)
    .bind(to_json(&stored.billing_address))
    .bind(i64::from(order.email_opt_in))
    .bind(to_json(&order.basket_attributes))
    .bind(order.status.as_str())
    .bind(stored.payment_source_id)
    .bind(now_ms())
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

/// The order numbered `number`, with its lines (by id) and notes (oldest first).
pub async fn load_order(connection: &mut AnyConnection, number: &str) -> Result<Option<StoredOrder>, StorageError> {
    let Some(row) = sqlx::query(
        "SELECT id, number, username, email, date_placed, currency, total_minor, shipping_method, shipping_minor,
                billing_address, email_opt_in, basket_attributes, status, payment_source_id
         FROM orders WHERE number = $1",
    )
    .bind(number)
    .fetch_optional(&mut *connection)
    .await?
    else {
        return Ok(None);
    };
    let order_id: i64 = row.try_get("id")?;
    let currency: String = row.try_get("currency")?;
    let currency: Currency = currency.parse().map_err(corrupt)?;
    let money = |minor_units: i64| Money { minor_units, currency };
    let date_placed: String = row.try_get("date_placed")?;
    let date_placed = time::OffsetDateTime::parse(&date_placed, &time::format_description::well_known::Rfc3339)
        .map_err(corrupt)?;

    let line_rows = sqlx::query(
        "SELECT line_id, sku, product_type, title, product_attributes, quantity, unit_price_minor, status,
                fulfilled_by, attributes
         FROM lines WHERE order_id = $1 ORDER BY line_id",
    )
    .bind(order_id)
    .fetch_all(&mut *connection)
    .await?;
    let mut lines = Vec::with_capacity(line_rows.len());
    for line in &line_rows {
        let line_id: i64 = line.try_get("line_id")?;
        let quantity: i64 = line.try_get("quantity")?;
        lines.push(Line {
            id: line_id as u64,
            product: Product {
                sku: line.try_get("sku")?,
                product_type: line.try_get("product_type")?,
                title: line.try_get("title")?,
                attributes: from_json(line.try_get("product_attributes")?, "lines")?,
            },
            quantity: u32::try_from(quantity).map_err(corrupt)?,
            unit_price: money(line.try_get("unit_price_minor")?),
            status: parse_status::<LineStatus>(line.try_get("status")?)?,
            fulfilled_by: line.try_get("fulfilled_by")?,
            attributes: from_json(line.try_get("attributes")?, "lines")?,
        });
    }

    let note_rows = sqlx::query("SELECT kind, message, line_id, module FROM order_notes WHERE order_id = $1 ORDER BY id")
        .bind(order_id)
        .fetch_all(&mut *connection)
        .await?;
    let mut notes = Vec::with_capacity(note_rows.len());
    for note in &note_rows {
        let kind: String = note.try_get("kind")?;
        let line_id: Option<i64> = note.try_get("line_id")?;
        notes.push(OrderNote {
            kind: if kind == "Error" { NoteKind::Error } else { NoteKind::Info },
            message: note.try_get("message")?,
            line_id: line_id.map(|id| id as u64),
            module: note.try_get("module")?,
        });
    }

    let stored_notes = notes.len();
    let order = Order {
        number: row.try_get("number")?,
        user: User {
            username: row.try_get("username")?,
            email: row.try_get("email")?,
        },
        date_placed,
        currency,
        total: money(row.try_get("total_minor")?),
        email_opt_in: row.try_get::<i64, _>("email_opt_in")? != 0,
        basket_attributes: from_json(row.try_get("basket_attributes")?, "orders")?,
        status: parse_status::<OrderStatus>(row.try_get("status")?)?,
        lines,
        notes,
    };
    Ok(Some(StoredOrder {
        id: order_id,
        order,
        shipping_method: row.try_get("shipping_method")?,
        shipping_charge: money(row.try_get("shipping_minor")?),
        billing_address: from_json(row.try_get("billing_address")?, "orders")?,
        payment_source_id: row.try_get("payment_source_id")?,
        stored_notes,
    }))
}

/// Which orders to list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub username: Option<String>,
}

/// One page of orders, newest first, and how many match in all.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub count: u64,
    pub orders: Vec<StoredOrder>,
}

/// Page `page` (from 1) of `page_size` orders matching `filter`.
pub async fn list_orders(
    connection: &mut AnyConnection,
    filter: &OrderFilter,
    page: u64,
    page_size: u64,
) -> Result<OrderPage, StorageError> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    for (column, value) in [("status", &filter.status), ("username", &filter.username)] {
        if let Some(value) = value {
            values.push(value.clone());
            conditions.push(format!("{column} = ${}", values.len()));
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
        count_query = count_query.bind(value.clone());
    }
    let count: i64 = count_query.fetch_one(&mut *connection).await?.try_get("count")?;

    let offset = page.saturating_sub(1).saturating_mul(page_size);
    let numbers_sql = format!(
        "SELECT number FROM orders {where_clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
        values.len() + 1,
        values.len() + 2
    );
    let mut numbers_query = sqlx::query(&numbers_sql);
    for value in &values {
        numbers_query = numbers_query.bind(value.clone());
    }
    let rows = numbers_query
        .bind(page_size as i64)
        .bind(offset as i64)
        .fetch_all(&mut *connection)
        .await?;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        let number: String = row.try_get("number")?;
        if let Some(order) = load_order(connection, &number).await? {
            orders.push(order);
        }
    }
    Ok(OrderPage {
        count: count as u64,
        orders,
    })
}
