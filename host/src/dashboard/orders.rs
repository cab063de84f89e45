//! The orders list, an order's page, and what staff do from it: retry
//! fulfillment, create a refund, approve or deny one.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use axum_extra::extract::Form;
use serde::Deserialize;
use time::OffsetDateTime;
use time::macros::format_description;

use super::session::{RequestOrigin, Staff};
use super::{DashboardError, render, staff_message};
use crate::api::{AnswerDeadline, AppState};
use crate::model::{Address, Money, NoteKind, OrderStatus, RefundStatus};
use crate::services::{
    JobState, OrderDetail, OrderFilter, OrderSnapshot, RefundAction, RefundRecord, StoredOrder, Waited,
};

/// Orders a page of the list shows.
const PAGE_SIZE: u64 = 50;
/// The last page the list pages to (as the API's).
const MAX_PAGE: u64 = 1_000_000;
/// Attempts an order's page shows (the newest).
const ATTEMPTS_SHOWN: u32 = 100;
/// Refunds an order's page shows (the newest).
const REFUNDS_SHOWN: u64 = 100;

const ORDER_STATUSES: [OrderStatus; 5] = [
    OrderStatus::Pending,
    OrderStatus::PaymentError,
    OrderStatus::Open,
    OrderStatus::Complete,
    OrderStatus::FulfillmentError,
];

/// The list's filters as the form sends them (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    number: String,
    /// YYYY-MM-DD, UTC, inclusive.
    #[serde(default)]
    from: String,
    /// YYYY-MM-DD, UTC, inclusive.
    #[serde(default)]
    to: String,
    page: Option<String>,
}

impl ListQuery {
    /// The filter, or what is wrong with a field.
    fn filter(&self) -> Result<(OrderFilter, u64), String> {
        let text = |value: &str| Some(value.trim().to_string()).filter(|value| !value.is_empty());
        let status = text(&self.status);
        if let Some(status) = &status
            && !ORDER_STATUSES.iter().any(|known| known.as_str() == status)
        {
            return Err(format!("status: unknown order status `{status}`"));
        }
        let date = |field: &str, value: &str| -> Result<Option<i64>, String> {
            let Some(value) = text(value) else { return Ok(None) };
            let date = time::Date::parse(&value, format_description!("[year]-[month]-[day]"))
                .map_err(|_| format!("{field}: `{value}` is not a date (YYYY-MM-DD)"))?;
            Ok(Some(date.midnight().assume_utc().unix_timestamp() * 1000))
        };
        let from = date("from", &self.from)?;
        let to = date("to", &self.to)?.map(|start_of_day| start_of_day + 86_400_000);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err("to: the range ends before it starts".to_string());
        }
        let page = match text(self.page.as_deref().unwrap_or("")) {
            None => 1,
            Some(page) => page
                .parse::<u64>()
                .ok()
                .filter(|page| (1..=MAX_PAGE).contains(page))
                .ok_or_else(|| format!("page: must be a number from 1 to {MAX_PAGE}"))?,
        };
        Ok((
            OrderFilter {
                status,
                username: text(&self.username),
                number: text(&self.number),
                placed_from_ms: from,
                placed_before_ms: to,
            },
            page,
        ))
    }

    /// The list's URL with these filters, on `page`.
    fn link(&self, page: u64) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("username", &self.username),
            ("number", &self.number),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.trim().is_empty() {
                url.append_pair(name, value.trim());
            }
        }
        url.append_pair("page", &page.to_string());
        format!("/dashboard/orders?{}", url.finish())
    }
}

/// A row of the list.
struct OrderRow {
    number: String,
    href: String,
    date: String,
    user: String,
    total: String,
    status: &'static str,
    /// Fulfillment Error, or Open for too long.
    attention: bool,
}

#[derive(Template)]
#[template(path = "dashboard/orders.html")]
struct OrdersPage {
    signed_in: Option<String>,
    csrf: String,
    query: ListQuery,
    statuses: Vec<&'static str>,
    rows: Vec<OrderRow>,
    count: u64,
    first: u64,
    last: u64,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

/// `GET /dashboard/orders`: the orders, newest first, filtered.
pub async fn list(State(state): State<AppState>, staff: Staff, Query(query): Query<ListQuery>) -> Result<Response, DashboardError> {
    let mut page = OrdersPage {
        signed_in: Some(staff.name().to_string()),
        csrf: staff.session.csrf.clone(),
        statuses: ORDER_STATUSES.iter().map(|status| status.as_str()).collect(),
        rows: Vec::new(),
        count: 0,
        first: 0,
        last: 0,
        prev: None,
        next: None,
        error: None,
        query: ListQuery::default(),
    };
    let (filter, number) = match query.filter() {
        Ok(filter) => filter,
        Err(error) => {
            page.error = Some(error);
            page.query = query;
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let (count, snapshots) = state.services.orders.page(staff.scope(), &filter, number, PAGE_SIZE).await?;
    let open_too_long = state.dashboard.open_too_long();
    let now = OffsetDateTime::now_utc();
    page.rows = snapshots
        .iter()
        .map(|snapshot| {
            let order = &snapshot.stored.order;
            let attention = match order.status {
                OrderStatus::FulfillmentError => true,
                OrderStatus::Open => now - order.date_placed > open_too_long,
                _ => false,
            };
            OrderRow {
                number: order.number.clone(),
                href: order_href(&order.number),
                date: short_date(order.date_placed),
                user: order.user.username.clone(),
                total: amount(order.total),
                status: order.status.as_str(),
                attention,
            }
        })
        .collect();
    page.count = count;
    let skipped = (number - 1) * PAGE_SIZE;
    (page.first, page.last) = match page.rows.len() as u64 {
        0 => (0, 0),
        shown => (skipped + 1, skipped + shown),
    };
    // Past the end, "newer" leads back to the last page there is.
    let last_page = count.div_ceil(PAGE_SIZE).max(1);
    page.prev = (number > 1).then(|| query.link((number - 1).min(last_page)));
    page.next = (number * PAGE_SIZE < count).then(|| query.link(number + 1));
    page.query = query;
    render(StatusCode::OK, &page)
}

/// A line of an order's page.
struct LineRow {
    id: u64,
    sku: String,
    title: String,
    quantity: u32,
    price: String,
    product_type: String,
    /// The catalog's attributes of the product bought (a seat's course).
    product_attributes: Vec<(String, String)>,
    status: &'static str,
    is_error: bool,
    module: String,
    attributes: Vec<(String, String)>,
    /// Whether a new refund may take it.
    refundable: bool,
    /// Whether a Complete refund took it (credited, and revoked unless it
    /// was for the payment only).
    refunded: bool,
}

struct NoteRow {
    error: bool,
    text: String,
}

struct AttemptRow {
    time: String,
    line_id: i64,
    module: String,
    outcome: String,
    message: String,
    elapsed_ms: i64,
}

struct PaymentBox {
    processor: String,
    reference: String,
    amount: String,
    refunded: String,
    events: Vec<(String, String, String, String)>,
}

struct JobBox {
    state: &'static str,
    running: bool,
    attempts: u32,
    next_attempt: Option<String>,
    worked_by: Option<String>,
    last_error: Option<String>,
}

struct RefundRow {
    id: i64,
    status: &'static str,
    total: String,
    credit: &'static str,
    revoke: bool,
    lines: Vec<(u64, &'static str, String)>,
    /// Open: staff approve or deny it ...
    open: bool,
    /// ... unless its credit was already asked of the processor.
    deniable: bool,
    /// Approved, but its credit or a revocation failed: approving again
    /// carries out what is left.
    unfinished: bool,
}

#[derive(Template)]
#[template(path = "dashboard/order.html")]
struct OrderPage {
    signed_in: Option<String>,
    csrf: String,
    number: String,
    href: String,
    status: &'static str,
    date: String,
    username: String,
    email: String,
    placed_by: String,
    total: String,
    shipping: String,
    /// The address's lines as written on an envelope; empty for none.
    billing_address: Vec<String>,
    shipping_address: Vec<String>,
    lines: Vec<LineRow>,
    notes: Vec<NoteRow>,
    attempt_count: u64,
    attempts: Vec<AttemptRow>,
    payment: Option<PaymentBox>,
    job: Option<JobBox>,
    retryable: bool,
    can_refund: bool,
    refund_count: u64,
    refunds: Vec<RefundRow>,
    flash: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    flash: Option<String>,
}

/// `address` as written on an envelope: the name, the street lines,
/// "city, state postcode", the country and the phone number, each that is
/// given (blank fields left out).
fn envelope_lines(address: &Address) -> Vec<String> {
    fn given(field: &Option<String>) -> Option<&str> {
        field.as_deref().map(str::trim).filter(|text| !text.is_empty())
    }
    let joined = |parts: &[Option<&str>], separator: &str| {
        let text = parts.iter().flatten().copied().collect::<Vec<_>>().join(separator);
        (!text.is_empty()).then_some(text)
    };
    let name = joined(&[given(&address.first_name), given(&address.last_name)], " ");
    let region = joined(&[given(&address.state), given(&address.postcode)], " ");
    let place = joined(&[given(&address.city), region.as_deref()], ", ");
    [
        name,
        given(&address.line1).map(str::to_string),
        given(&address.line2).map(str::to_string),
        place,
        given(&address.country).map(str::to_string),
        given(&address.phone_number).map(str::to_string),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The words of a flash code a staff action redirects with (a fixed set:
/// a link cannot make the page say anything else).
fn flash_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "retried-complete" => "Fulfillment retried: the order is Complete.",
        "retried-failed" => "Fulfillment retried: lines still fail; the notes say why.",
        "retry-running" => "The retry goes on; reload the page in a moment for its outcome.",
        "refund-created" => "Refund created: it is Open, waiting for approval.",
        "refund-approved" => "Refund approved: credited and revoked.",
        "refund-failed" => "Refund approved, but it did not finish: its status and line reasons say why; approve it again to retry.",
        "refund-busy" => "The refund is being carried out right now; reload the page in a moment for its outcome.",
        "refund-denied" => "Refund denied.",
        "refund-running" => "The refund is being carried out; reload the page in a moment for its outcome.",
        _ => return None,
    })
}

/// `GET /dashboard/orders/{number}`.
pub async fn page(
    State(state): State<AppState>,
    staff: Staff,
    Path(number): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashboardError> {
    let flash = query.flash.as_deref().and_then(flash_text).map(str::to_string);
    let page = order_page(&state, &staff, &number, flash, None).await?;
    render(StatusCode::OK, &page)
}

/// Order `number`'s page, with a `flash` (a success) or an `error`.
async fn order_page(
    state: &AppState,
    staff: &Staff,
    number: &str,
    flash: Option<String>,
    error: Option<String>,
) -> Result<OrderPage, DashboardError> {
    let scope = staff.scope();
    let detail = state.services.orders.detail(scope, number, ATTEMPTS_SHOWN).await?;
    let (refund_count, refunds) = state.services.refunds.refunds_of_order(scope, number, 1, REFUNDS_SHOWN).await?;
    Ok(OrderPage::of(detail, refund_count, &refunds, staff, flash, error))
}

impl OrderPage {
    fn of(detail: OrderDetail, refund_count: u64, refunds: &[RefundRecord], staff: &Staff, flash: Option<String>, error: Option<String>) -> OrderPage {
        let OrderDetail {
            snapshot: OrderSnapshot { stored, payment, job },
            attempt_count,
            attempts,
            payment_events,
        } = detail;
        let StoredOrder { order, placed_by, .. } = stored;
        let taken = |line_id: u64| {
            refunds.iter().any(|refund| {
                refund.lines.iter().any(|line| line.line_id == line_id && line.status != crate::model::RefundLineStatus::Denied)
            })
        };
        let complete = order.status == OrderStatus::Complete;
        let lines: Vec<LineRow> = order
            .lines
            .iter()
            .map(|line| LineRow {
                id: line.id,
                sku: line.product.sku.clone(),
                title: line.product.title.clone(),
                quantity: line.quantity,
                price: line.unit_price.checked_mul(line.quantity).map(amount).unwrap_or_default(),
                product_type: line.product.product_type.clone(),
                product_attributes: line.product.attributes.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
                status: line.status.as_str(),
                is_error: line.status.is_error(),
                module: line.fulfilled_by.clone().unwrap_or_default(),
                attributes: line.attributes.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
                refundable: complete && !taken(line.id),
                refunded: refunds.iter().any(|refund| {
                    refund.status == RefundStatus::Complete && refund.lines.iter().any(|refunded| refunded.line_id == line.id)
                }),
            })
            .collect();
        let notes = order
            .notes
            .iter()
            .map(|note| {
                let mut text = String::new();
                if let Some(line) = note.line_id {
                    text.push_str(&format!("Line {line}"));
                }
                if let Some(module) = &note.module {
                    text.push_str(&format!("{}{module}", if text.is_empty() { "" } else { ", " }));
                }
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&note.message);
                NoteRow {
                    error: note.kind == NoteKind::Error,
                    text,
                }
            })
            .collect();
        let currency = order.currency;
        let money = |minor_units: i64| amount(Money { minor_units, currency });
        OrderPage {
            signed_in: Some(staff.name().to_string()),
            csrf: staff.session.csrf.clone(),
            href: order_href(&order.number),
            number: order.number.clone(),
            status: order.status.as_str(),
            date: long_date(order.date_placed),
            username: order.user.username.clone(),
            email: order.user.email.clone(),
            placed_by: placed_by.unwrap_or_default(),
            total: amount(order.total),
            shipping: format!("{}, {}", order.shipping.method, amount(order.shipping.charge)),
            billing_address: order.billing_address.as_ref().map(envelope_lines).unwrap_or_default(),
            shipping_address: order.shipping_address.as_ref().map(envelope_lines).unwrap_or_default(),
            can_refund: lines.iter().any(|line| line.refundable),
            lines,
            notes,
            attempt_count,
            attempts: attempts
                .into_iter()
                .map(|attempt| AttemptRow {
                    time: long_date_ms(attempt.created_at),
                    line_id: attempt.line_id,
                    module: attempt.module.unwrap_or_default(),
                    outcome: attempt.outcome,
                    message: attempt.message.unwrap_or_default(),
                    elapsed_ms: attempt.elapsed_ms,
                })
                .collect(),
            payment: payment.map(|payment| PaymentBox {
                processor: payment.processor,
                reference: payment.reference,
                amount: money(payment.amount_minor),
                refunded: money(payment.refunded_minor),
                events: payment_events
                    .into_iter()
                    .map(|event| (long_date_ms(event.created_at), event.event_type, money(event.amount_minor), event.reference))
                    .collect(),
            }),
            job: job.map(|job| JobBox {
                state: if job.leased && job.state == JobState::Queued { "running" } else { job.state.as_str() },
                running: job.leased,
                attempts: job.attempts,
                next_attempt: (job.state == JobState::Queued && !job.leased).then(|| long_date_ms(job.run_at_ms)),
                worked_by: job.worked_by,
                last_error: job.last_error,
            }),
            retryable: order.status.is_fulfillable(),
            refund_count,
            refunds: refunds
                .iter()
                .map(|refund| RefundRow {
                    id: refund.id,
                    status: refund.status.as_str(),
                    total: money(refund.total_minor),
                    credit: refund.credit.as_str(),
                    revoke: refund.revoke,
                    lines: refund
                        .lines
                        .iter()
                        .map(|line| (line.line_id, line.status.as_str(), line.reason.clone().unwrap_or_default()))
                        .collect(),
                    open: refund.status == RefundStatus::Open,
                    deniable: refund.status == RefundStatus::Open && refund.credit != crate::services::CreditState::Intended,
                    unfinished: matches!(
                        refund.status,
                        RefundStatus::PaymentRefundError | RefundStatus::PaymentRefunded | RefundStatus::RevocationError
                    ),
                })
                .collect(),
            flash,
            error,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
}

/// `POST /dashboard/orders/{number}/retry`: the API's staff retry; back to
/// the order's page, which tells the outcome.
pub async fn retry(
    State(state): State<AppState>,
    Extension(deadline): Extension<AnswerDeadline>,
    staff: Staff,
    origin: RequestOrigin,
    Path(number): Path<String>,
    Form(input): Form<ActionForm>,
) -> Result<Response, DashboardError> {
    staff.check_post(&origin, input.csrf.as_deref())?;
    let scope = staff.scope();
    let flash = match state.services.staff.retry_fulfillment(scope, &number, deadline.0).await {
        Ok(Waited::StillRunning) => "retry-running",
        Ok(Waited::Ended) => match state.services.orders.snapshot(scope, &number).await?.stored.order.status {
            OrderStatus::Complete => "retried-complete",
            _ => "retried-failed",
        },
        Err(error) => {
            tracing::info!(order = %number, staff = staff.name(), %error, "a retry from the dashboard was refused");
            return refused(&state, &staff, &number, error.into()).await;
        }
    };
    tracing::info!(order = %number, staff = staff.name(), outcome = flash, "staff retried fulfillment from the dashboard");
    Ok(back_to(&number, flash))
}

#[derive(Debug, Deserialize)]
pub struct NewRefundForm {
    csrf: Option<String>,
    #[serde(default)]
    line_ids: Vec<u64>,
}

/// `POST /dashboard/orders/{number}/refunds`: an Open refund of the checked lines.
pub async fn create_refund(
    State(state): State<AppState>,
    staff: Staff,
    origin: RequestOrigin,
    Path(number): Path<String>,
    Form(input): Form<NewRefundForm>,
) -> Result<Response, DashboardError> {
    staff.check_post(&origin, input.csrf.as_deref())?;
    if input.line_ids.is_empty() {
        return refused(&state, &staff, &number, DashboardError::BadRequest("Check the lines to refund first.".into())).await;
    }
    match state.services.refunds.create_refund(staff.scope(), &number, &input.line_ids).await {
        Ok(refund) => {
            tracing::info!(order = %number, refund = refund.id, staff = staff.name(), "staff created a refund from the dashboard");
            Ok(back_to(&number, "refund-created"))
        }
        Err(error) => {
            tracing::info!(order = %number, staff = staff.name(), %error, "a refund from the dashboard was refused");
            refused(&state, &staff, &number, error.into()).await
        }
    }
}

/// `POST /dashboard/refunds/{id}/approve`: credit, then revoke.
pub async fn approve_refund(
    state: State<AppState>,
    deadline: Extension<AnswerDeadline>,
    staff: Staff,
    origin: RequestOrigin,
    Path(id): Path<i64>,
    Form(input): Form<ActionForm>,
) -> Result<Response, DashboardError> {
    decide_refund(state, deadline, staff, origin, id, input, RefundAction::Approve).await
}

/// `POST /dashboard/refunds/{id}/deny`.
pub async fn deny_refund(
    state: State<AppState>,
    deadline: Extension<AnswerDeadline>,
    staff: Staff,
    origin: RequestOrigin,
    Path(id): Path<i64>,
    Form(input): Form<ActionForm>,
) -> Result<Response, DashboardError> {
    decide_refund(state, deadline, staff, origin, id, input, RefundAction::Deny).await
}

async fn decide_refund(
    State(state): State<AppState>,
    Extension(deadline): Extension<AnswerDeadline>,
    staff: Staff,
    origin: RequestOrigin,
    id: i64,
    input: ActionForm,
    action: RefundAction,
) -> Result<Response, DashboardError> {
    staff.check_post(&origin, input.csrf.as_deref())?;
    let scope = staff.scope();
    let number = state.services.refunds.refund(scope, id).await?.order_number;
    let flash = match state.services.staff.process_refund(scope, id, action, deadline.0).await {
        Ok(Waited::StillRunning) if action == RefundAction::Deny => "refund-busy",
        Ok(Waited::StillRunning) => "refund-running",
        // What was stored says how it went.
        Ok(Waited::Ended) => match state.services.refunds.refund(scope, id).await?.status {
            RefundStatus::Denied => "refund-denied",
            RefundStatus::Complete => "refund-approved",
            _ => "refund-failed",
        },
        Err(error) => {
            tracing::info!(order = %number, refund = id, staff = staff.name(), %error, "a refund decision from the dashboard was refused");
            return refused(&state, &staff, &number, error.into()).await;
        }
    };
    tracing::info!(order = %number, refund = id, staff = staff.name(), outcome = flash, "staff decided a refund from the dashboard");
    Ok(back_to(&number, flash))
}

/// 303 to the order's page, with a flash.
fn back_to(number: &str, flash: &str) -> Response {
    Redirect::to(&format!("{}?flash={flash}", order_href(number))).into_response()
}

/// The order's page again, with the status and words of `error`.
async fn refused(state: &AppState, staff: &Staff, number: &str, error: DashboardError) -> Result<Response, DashboardError> {
    let status = error.status();
    let page = order_page(state, staff, number, None, Some(staff_message(&error))).await?;
    render(status, &page)
}

fn order_href(number: &str) -> String {
    format!("/dashboard/orders/{}", crate::api::urlencode(number))
}

fn amount(money: Money) -> String {
    format!("{} {}", money.to_decimal_string(), money.currency.code())
}

fn short_date(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute]")).unwrap_or_default()
}

fn long_date(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).unwrap_or_default()
}

fn long_date_ms(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .map(long_date)
        .unwrap_or_default()
}
