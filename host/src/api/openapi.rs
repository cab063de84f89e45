//! The OpenAPI document of the whole API, generated from the handlers'
//! annotations: `GET /api/v1/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "fulfillment-host", description = "Places orders and fulfills them through WebAssembly modules."),
    paths(
        super::orders::place_order,
        super::orders::get_order,
        super::orders::list_orders,
        super::orders::retry_fulfillment,
        super::refunds::create_refund,
        super::refunds::get_refund,
        super::refunds::process_refund,
        super::products::list_products,
        super::products::upsert_product,
        super::modules::list_modules,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
