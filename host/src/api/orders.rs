//! `/orders`: place, read, list, retry fulfillment.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::params::{ApiPath, ApiQuery};
use super::{Admin, AnswerDeadline, ApiError, AppState, Caller};
use crate::model::{Address, LineStatus, NoteKind, OrderStatus};
use crate::services::{JobState, OrderFilter, OrderSnapshot, PlaceOrder, Placed, Waited};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders, place_order))
        .routes(routes!(get_order))
        .routes(routes!(retry_fulfillment))
}

/// An order as the API shows it. Amounts are decimal strings in `currency`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    #[schema(example = "EDX-100001")]
    pub number: String,
    /// Pending, Payment Error, Open, Complete or Fulfillment Error.
    #[schema(value_type = OrderStatus, example = "Complete")]
    pub status: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime, example = "2026-01-01T12:00:00Z")]
    pub date_placed: String,
    pub user: crate::model::User,
    #[schema(value_type = crate::model::Currency)]
    pub currency: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "59.00")]
    pub total: String,
    #[schema(example = "no-shipping-required")]
    pub shipping_method: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "0.00")]
    pub shipping_charge: String,
    /// Where the invoice goes; null when the storefront gave none. Orders
    /// placed before addresses were records show the address fields of the
    /// object they were given.
    pub billing_address: Option<Address>,
    /// Where physical goods go; null when the storefront gave none.
    pub shipping_address: Option<Address>,
    pub email_opt_in: bool,
    pub lines: Vec<LineView>,
    pub notes: Vec<NoteView>,
    pub payment: Option<PaymentView>,
    /// The order's fulfillment job.
    pub fulfillment_job: Option<JobView>,
}

/// Where an order's fulfillment stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// queued (or running, when `running`), done, failed (no automatic
    /// retry is left: a configuration error, or any failure in sync mode)
    /// or gave-up (out of retries).
    #[schema(value_type = JobStateName)]
    pub state: String,
    /// Whether a host is working on it now.
    pub running: bool,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (RFC 3339), while queued.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    /// The host that made the last attempt.
    pub worked_by: Option<String>,
    /// The lines that failed in the last attempt.
    pub last_error: Option<String>,
}

/// A line of an order: what was bought, its status and who fulfilled it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    #[schema(minimum = 1, example = 1)]
    pub id: u64,
    #[schema(example = "SEAT-DEMOX-VERIFIED")]
    pub sku: String,
    #[schema(example = "Seat")]
    pub product_type: String,
    pub title: String,
    #[schema(minimum = 1, maximum = 1000, example = 1)]
    pub quantity: u32,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "49.00")]
    pub unit_price: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "49.00")]
    pub line_price: String,
    /// Open, Complete, or one of the four Fulfillment ... Error statuses.
    #[schema(value_type = LineStatus, example = "Complete")]
    pub status: String,
    /// The module that claimed the line.
    pub fulfilled_by: Option<String>,
    /// What modules stored on the line.
    pub attributes: BTreeMap<String, String>,
}

/// A note for staff: what happened to the order or a line.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    /// Info or Error.
    #[schema(value_type = NoteKindName)]
    pub kind: String,
    pub message: String,
    pub line_id: Option<u64>,
    pub module: Option<String>,
}

/// The order's payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(example = "test")]
    pub processor: String,
    #[schema(example = "test_ch_5f0c2a9e1b7d4c3a8e6f0b1d2c3e4f5a")]
    pub reference: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "59.00")]
    pub amount: String,
    /// What was credited back so far.
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "0.00")]
    pub refunded: String,
}

/// The states of a fulfillment job, as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum JobStateName {
    Queued,
    Done,
    Failed,
    GaveUp,
}

/// The kinds of notes.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub enum NoteKindName {
    Info,
    Error,
}

/// The API view of an order with its payment and job.
pub(super) fn order_view(snapshot: OrderSnapshot) -> OrderView {
    let OrderSnapshot { stored, payment, job } = snapshot;
    let order = &stored.order;
    let decimal = |minor_units: i64| crate::model::Money { minor_units, currency: order.currency }.to_decimal_string();
    let payment = payment.map(|payment| PaymentView {
        processor: payment.processor,
        reference: payment.reference,
        amount: decimal(payment.amount_minor),
        refunded: decimal(payment.refunded_minor),
    });
    let fulfillment_job = job.map(|job| JobView {
        state: job.state.as_str().to_string(),
        running: job.leased,
        attempts: job.attempts,
        next_attempt_at: (job.state == JobState::Queued).then(|| rfc3339_ms(job.run_at_ms)),
        worked_by: job.worked_by,
        last_error: job.last_error,
    });
    OrderView {
        fulfillment_job,
        number: order.number.clone(),
        status: order.status.to_string(),
        date_placed: order.date_placed_text(),
        user: order.user.clone(),
        currency: order.currency.code().to_string(),
        total: order.total.to_decimal_string(),
        shipping_method: order.shipping.method.clone(),
        shipping_charge: order.shipping.charge.to_decimal_string(),
        billing_address: order.billing_address.clone(),
        shipping_address: order.shipping_address.clone(),
        email_opt_in: order.email_opt_in,
        lines: order
            .lines
            .iter()
            .map(|line| LineView {
                id: line.id,
                sku: line.product.sku.clone(),
                product_type: line.product.product_type.clone(),
                title: line.product.title.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price.to_decimal_string(),
                line_price: line
                    .unit_price
                    .checked_mul(line.quantity)
                    .map(|amount| amount.to_decimal_string())
                    .unwrap_or_default(),
                status: line.status.to_string(),
                fulfilled_by: line.fulfilled_by.clone(),
                attributes: line.attributes.clone(),
            })
            .collect(),
        notes: order
            .notes
            .iter()
            .map(|note| NoteView {
                kind: match note.kind {
                    NoteKind::Info => "Info".into(),
                    NoteKind::Error => "Error".into(),
                },
                message: note.message.clone(),
                line_id: note.line_id,
                module: note.module.clone(),
            })
            .collect(),
        payment,
    }
}

/// Places an order: payment first, then the order, then fulfillment. In
/// sync mode the answer carries the fulfilled order (201), or, when
/// fulfillment outlasts `[fulfillment] sync_wait_ms`, 202 with the order as
/// it stands and its URL in `Location` (fulfillment goes on and stores its
/// outcome). In async mode: 201 with the order as it stands.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    request_body(content = PlaceOrder, example = json!({
        "user": {"username": "alice", "email": "alice@example.com"},
        "basket": [{"sku": "SEAT-DEMOX-VERIFIED", "quantity": 1}],
        "shipping_method": "no-shipping-required", "shipping_charge": "0.00",
        "billing_address": {"first_name": "Alice", "last_name": "Smith", "line1": "1 Main St", "city": "Cambridge",
            "state": "MA", "postcode": "02139", "country": "US"},
        "total": "49.00", "currency": "USD",
        "payment": {"processor": "test", "token": "tok_success"}, "email_opt_in": false
    })),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
        description = "1 to 255 visible ASCII characters. The same key and body give the same order and one charge")),
    responses(
        (status = 201, description = "Placed", body = OrderView),
        (status = 200, description = "Replayed: an earlier request with this key made it", body = OrderView),
        (status = 202, description = "Placed and paid; fulfillment still running (poll Location)", body = OrderView),
        (status = 402, description = "Payment declined: no order"),
        (status = 409, description = "Key reused with another body, or held by a checkout outside the token's scope"),
        (status = 422, description = "Invalid basket, total, field or key: nothing charged"),
        (status = 502, description = "The payment processor failed: nothing charged"),
        (status = 503, description = "Database busy before the charge (nothing charged), or paid and the order is being made from the checkout record (repeat with the same key), or the request time-out"),
    ),
    security(("bearer" = [])))]
async fn place_order(
    State(state): State<AppState>,
    Extension(deadline): Extension<AnswerDeadline>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PlaceOrder>,
) -> Result<(StatusCode, HeaderMap, Json<OrderView>), ApiError> {
    let key = headers
        .get("idempotency-key")
        .map(|value| value.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII characters only"))?;
    // The checkout, its charge and the start of its fulfillment run in a
    // task of their own: a dropped request (or one that reaches its
    // deadline) cancels none of it, and a paid order's job is never left
    // leased to nobody.
    if deadline.passed() {
        // The body took the request's whole time: nothing was started.
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long; nothing was charged"));
    }
    let keyed = key.is_some();
    let services = state.services.clone();
    let (name, scope) = (caller.name.clone(), caller.scope.clone());
    let placing = state.services.executor.track(async move {
        let placed = services.checkout.place_order(input, key.as_deref(), &name, &scope).await?;
        Ok::<_, crate::services::OrderError>(match placed {
            Placed::Replayed(stored) => (StatusCode::OK, stored.order.number, None),
            Placed::Created { order, job } => {
                let number = order.order.number.clone();
                (StatusCode::CREATED, number, job.map(|job| services.executor.start_placed(job, order)))
            }
        })
    });
    let Some((mut status, number, running)) = deadline.result_of(placing).await? else {
        let message = if keyed {
            "the checkout is still being paid and goes on: send the same request with the same Idempotency-Key to get its order"
        } else {
            "the checkout is still being paid and goes on; this request had no Idempotency-Key, so sending it again would \
             place another order: look for it in GET /orders first"
        };
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "order_pending", message));
    };
    let services = &state.services;
    let attempted = match running {
        Some(mut running) => {
            let wait = services.sync_wait().min(deadline.remaining());
            let attempted = running.stored_order_within(wait).await;
            if attempted.is_none() {
                status = StatusCode::ACCEPTED;
            }
            attempted
        }
        None => None,
    };
    // The order as its attempt stored it is not read back.
    let snapshot = match attempted {
        Some(stored) => services.orders.snapshot_of(&caller.scope, stored).await?,
        None => services.orders.snapshot(&caller.scope, &number).await?,
    };
    Ok((status, location(&number), Json(order_view(snapshot))))
}

/// `Location: /api/v1/orders/{number}`.
fn location(number: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("/api/v1/orders/{}", urlencode(number))) {
        headers.insert(header::LOCATION, value);
    }
    headers
}

#[utoipa::path(get, path = "/api/v1/orders/{number}", tag = "orders", params(("number" = String, Path, example = "EDX-100001")),
    responses((status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order, or one outside the token's scope")),
    security(("bearer" = [])))]
async fn get_order(State(state): State<AppState>, caller: Caller, ApiPath(number): ApiPath<String>) -> Result<Json<OrderView>, ApiError> {
    Ok(Json(order_view(state.services.orders.snapshot(&caller.scope, &number).await?)))
}

/// Filters and page of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only this user's orders.
    username: Option<String>,
    /// From 1 to 1,000,000.
    #[param(minimum = 1, maximum = 1_000_000, default = 1)]
    page: Option<u64>,
    /// From 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    page_size: Option<u64>,
}

/// The last page a list answers: with at most 100 a page, an offset of
/// 10^8 rows at most, far in any integer type and past any real list;
/// beyond it the page number is a mistake (or a probe), answered 422.
const MAX_PAGE: u64 = 1_000_000;

/// A checked page: `number` from 1, `size` items.
#[derive(Debug, Clone, Copy)]
pub(super) struct Page {
    pub number: u64,
    pub size: u64,
}

impl Page {
    /// The page `page` of `page_size` (the query's), within the bounds.
    pub(super) fn checked(page: Option<u64>, page_size: Option<u64>) -> Result<Page, ApiError> {
        let number = page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&number) {
            return Err(ApiError::invalid("page", format!("must be from 1 to {MAX_PAGE}, not {number}")));
        }
        let size = page_size.unwrap_or(20);
        if !(1..=100).contains(&size) {
            return Err(ApiError::invalid("page_size", format!("must be from 1 to 100, not {size}")));
        }
        Ok(Page { number, size })
    }

    /// The `next` and `previous` links of this page of `count` items;
    /// `link(page)` is a page's URL.
    pub(super) fn links(&self, count: u64, link: impl Fn(u64) -> String) -> (Option<String>, Option<String>) {
        (
            (self.number * self.size < count).then(|| link(self.number + 1)),
            (self.number > 1).then(|| link(self.number - 1)),
        )
    }
}

/// A page of orders (page-number pagination).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    pub count: u64,
    /// The next page's URL, if any.
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<OrderView>,
}

/// Orders, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(ListQuery),
    responses((status = 200, description = "A page of orders", body = OrderList),
        (status = 422, description = "An unknown status or parameter, or a page out of bounds")),
    security(("bearer" = [])))]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let checked = Page::checked(query.page, query.page_size)?;
    let Page { number: page, size: page_size } = checked;
    if let Some(status) = &query.status
        && serde_json::from_value::<OrderStatus>(serde_json::Value::String(status.clone())).is_err()
    {
        return Err(ApiError::invalid("status", format!("unknown order status `{status}`")));
    }
    let filter = OrderFilter {
        status: query.status.clone(),
        username: query.username.clone(),
        ..OrderFilter::default()
    };
    let (count, snapshots) = state.services.orders.page(&caller.scope, &filter, page, page_size).await?;
    let link = |page: u64| {
        let mut url = format!("/api/v1/orders?page={page}&page_size={page_size}");
        for (name, value) in [("status", &query.status), ("username", &query.username)] {
            if let Some(value) = value {
                url.push_str(&format!("&{name}={}", urlencode(value)));
            }
        }
        url
    };
    let (next, previous) = checked.links(count, link);
    Ok(Json(OrderList {
        count,
        next,
        previous,
        results: snapshots.into_iter().map(order_view).collect(),
    }))
}

/// `text` percent-encoded for a URL's path segment or query value.
pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Staff retry: fulfills the lines that are not Complete, under the
/// order's job lease, in a task the request cannot drop. 200 with the order
/// when it is now Complete; 502 with the order when it still fails; 202
/// when the retry outlasts `sync_wait_ms` (it goes on); 406 when the order
/// is not fulfillable; 409 while a worker fulfills it.
#[utoipa::path(put, path = "/api/v1/orders/{number}/fulfill", tag = "orders", params(("number" = String, Path, example = "EDX-100001")),
    responses((status = 200, description = "Fulfilled: the order is Complete", body = OrderView),
        (status = 202, description = "The retry outlasts sync_wait_ms; it goes on", body = OrderView),
        (status = 403, description = "Needs an admin token"),
        (status = 404, description = "No such order"),
        (status = 406, description = "The order is not Open or Fulfillment Error"),
        (status = 409, description = "A worker is fulfilling the order"),
        (status = 502, description = "The retry ran and lines still fail", body = OrderView)),
    security(("bearer" = [])))]
async fn retry_fulfillment(
    State(state): State<AppState>,
    Extension(deadline): Extension<AnswerDeadline>,
    Admin(caller): Admin,
    ApiPath(number): ApiPath<String>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let services = &state.services;
    let waited = services.staff.retry_fulfillment(&caller.scope, &number, deadline.0).await?;
    let stored = waited == Waited::Ended;
    let snapshot = services.orders.snapshot(&caller.scope, &number).await?;
    let status = match (stored, snapshot.stored.order.status) {
        (false, _) => StatusCode::ACCEPTED,
        (true, OrderStatus::Complete) => StatusCode::OK,
        (true, _) => StatusCode::BAD_GATEWAY,
    };
    Ok((status, Json(order_view(snapshot))))
}

/// Unix milliseconds as RFC 3339.
fn rfc3339_ms(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
