//! `/refunds`: create, read, list by order, then approve or deny.

use axum::{Extension, Json};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::orders::{Page, urlencode};
use super::params::{ApiPath, ApiQuery};
use super::{Admin, AnswerDeadline, ApiError, AppState};
use crate::model::{RefundLineStatus, RefundStatus};
use crate::services::{RefundAction, RefundRecord, Waited};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_refund))
        .routes(routes!(get_refund))
        .routes(routes!(process_refund))
        .routes(routes!(list_order_refunds))
}

/// A refund to create: lines of a Complete order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"order_number": "EDX-100001", "line_ids": [1]}))]
pub struct NewRefund {
    pub order_number: String,
    /// Lines of the order to refund.
    #[schema(min_items = 1)]
    pub line_ids: Vec<u64>,
}

/// The staff's decision on a refund.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "approve"}))]
pub struct ProcessRefund {
    pub action: RefundAction,
}

/// A refund. Statuses: Open, Denied, Payment Refund Error, Payment Refunded,
/// Revocation Error, Complete.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    #[schema(minimum = 1, example = 1)]
    pub id: i64,
    #[schema(example = "EDX-100001")]
    pub order_number: String,
    #[schema(value_type = RefundStatus, example = "Complete")]
    pub status: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "49.00")]
    pub total: String,
    #[schema(value_type = crate::model::Currency)]
    pub currency: String,
    /// none, intended (recorded; the processor is being asked), done, failed.
    #[schema(value_type = CreditStateName)]
    pub credit: String,
    /// The processor's reference of the credit, once done.
    pub credit_reference: Option<String>,
    pub lines: Vec<RefundLineView>,
}

/// A refunded line.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundLineView {
    #[schema(minimum = 1, example = 1)]
    pub line_id: u64,
    /// Open, Denied, Revocation Error or Complete.
    #[schema(value_type = RefundLineStatus, example = "Complete")]
    pub status: String,
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "49.00")]
    pub amount: String,
    /// Why revocation failed, or the module's note.
    pub reason: Option<String>,
}

/// Where a refund's credit stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CreditStateName {
    None,
    Intended,
    Done,
    Failed,
}

/// A page of an order's refunds (page-number pagination, as orders).
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundList {
    pub count: u64,
    /// The next page's URL, if any.
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<RefundView>,
}

/// The page of `GET /orders/{number}/refunds`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefundListQuery {
    /// From 1 to 1,000,000.
    #[param(minimum = 1, maximum = 1_000_000, default = 1)]
    page: Option<u64>,
    /// From 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    page_size: Option<u64>,
}

fn view(refund: &RefundRecord) -> RefundView {
    let decimal = |minor_units: i64| match refund.currency.parse() {
        Ok(currency) => crate::model::Money { minor_units, currency }.to_decimal_string(),
        Err(_) => minor_units.to_string(),
    };
    RefundView {
        id: refund.id,
        order_number: refund.order_number.clone(),
        status: refund.status.to_string(),
        total: decimal(refund.total_minor),
        currency: refund.currency.clone(),
        credit: refund.credit.as_str().to_string(),
        credit_reference: refund.credit_reference.clone(),
        lines: refund
            .lines
            .iter()
            .map(|line| RefundLineView {
                line_id: line.line_id,
                status: line.status.to_string(),
                amount: decimal(line.amount_minor),
                reason: line.reason.clone(),
            })
            .collect(),
    }
}

/// Creates an Open refund for lines of a Complete order.
#[utoipa::path(post, path = "/api/v1/refunds", tag = "refunds", request_body = NewRefund,
    responses((status = 201, description = "Created, Open", body = RefundView),
        (status = 403, description = "Needs an admin token"),
        (status = 404, description = "No such order"),
        (status = 409, description = "A line is already refunded, or the order is not Complete"),
        (status = 422, description = "No lines, or a line not of the order")),
    security(("bearer" = [])))]
async fn create_refund(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(input): ApiJson<NewRefund>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    let refund = state.services.refunds.create_refund(&caller.scope, &input.order_number, &input.line_ids).await?;
    Ok((StatusCode::CREATED, Json(view(&refund))))
}

#[utoipa::path(get, path = "/api/v1/refunds/{id}", tag = "refunds", params(("id" = i64, Path, minimum = 1, example = 1)),
    responses((status = 200, description = "The refund", body = RefundView),
        (status = 403, description = "Needs an admin token"),
        (status = 404, description = "No such refund")),
    security(("bearer" = [])))]
async fn get_refund(State(state): State<AppState>, Admin(caller): Admin, ApiPath(id): ApiPath<i64>) -> Result<Json<RefundView>, ApiError> {
    Ok(Json(view(&state.services.refunds.refund(&caller.scope, id).await?)))
}

/// The refunds of an order, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/orders/{number}/refunds", tag = "refunds",
    params(("number" = String, Path, example = "EDX-100001"), RefundListQuery),
    responses((status = 200, description = "A page of the order's refunds", body = RefundList),
        (status = 403, description = "Needs an admin token"),
        (status = 404, description = "No such order"),
        (status = 422, description = "A page out of bounds, or an unknown parameter")),
    security(("bearer" = [])))]
async fn list_order_refunds(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(number): ApiPath<String>,
    ApiQuery(query): ApiQuery<RefundListQuery>,
) -> Result<Json<RefundList>, ApiError> {
    let page = Page::checked(query.page, query.page_size)?;
    let (count, refunds) = state.services.refunds.refunds_of_order(&caller.scope, &number, page.number, page.size).await?;
    let (next, previous) = page.links(count, |n| {
        format!("/api/v1/orders/{}/refunds?page={n}&page_size={}", urlencode(&number), page.size)
    });
    Ok(Json(RefundList {
        count,
        next,
        previous,
        results: refunds.iter().map(view).collect(),
    }))
}

/// Approves (`approve`: credit, then revoke; `approve_payment_only`: credit
/// only) or denies a refund. The credit and revocations run as the refund's
/// job, in a task the request cannot drop: 200 with the refund when they
/// ended within `[fulfillment] sync_wait_ms`, 202 with the refund as it
/// stands when not (or when another request is carrying them out).
/// Repeating a decision already carried out answers 200 and changes nothing.
#[utoipa::path(put, path = "/api/v1/refunds/{id}/process", tag = "refunds", params(("id" = i64, Path, minimum = 1, example = 1)),
    request_body = ProcessRefund,
    responses((status = 200, description = "Carried out (or already)", body = RefundView),
        (status = 202, description = "Its work goes on, or another request carries it out", body = RefundView),
        (status = 403, description = "Needs an admin token"),
        (status = 404, description = "No such refund"),
        (status = 409, description = "The refund's status does not allow the action, or the credit exceeds what is left")),
    security(("bearer" = [])))]
async fn process_refund(
    State(state): State<AppState>,
    Extension(deadline): Extension<AnswerDeadline>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ProcessRefund>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    let services = &state.services;
    let status = match services.staff.process_refund(&caller.scope, id, input.action, deadline.0).await? {
        Waited::Ended => StatusCode::OK,
        Waited::StillRunning => StatusCode::ACCEPTED,
    };
    Ok((status, Json(view(&services.refunds.refund(&caller.scope, id).await?))))
}
