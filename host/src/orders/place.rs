//! Placing an order: validate, collect payment, create the order, fulfill.
//! The reference's rule: payment is collected before any order exists, and
//! money is never taken without a record.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;

use super::{OrderError, OrderService};
use crate::dispatch::{self, DispatchReport};
use crate::model::{Currency, Line, LineStatus, Money, Order, OrderStatus, Product, User};
use crate::payments::PaymentError;
use crate::storage::{self, KeyClaim, StoredOrder};

/// How long a request waits for a concurrent request with the same
/// idempotency key to finish before answering 409.
const CONCURRENT_KEY_WAIT: Duration = Duration::from_secs(30);
const CONCURRENT_KEY_POLL: Duration = Duration::from_millis(25);

/// A checkout, as the storefront sends it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub user: User,
    pub basket: Vec<BasketLine>,
    /// Default "no-shipping-required".
    #[serde(default)]
    pub shipping_method: Option<String>,
    /// Decimal string; default 0.
    #[serde(default)]
    pub shipping_charge: Option<String>,
    /// Stored as given.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub billing_address: Value,
    /// The total the storefront showed: must equal lines + shipping.
    pub total: String,
    /// ISO 4217; every product must be priced in it.
    pub currency: String,
    pub payment: PaymentInput,
    #[serde(default)]
    pub email_opt_in: bool,
}

/// A basket line: a sku and how many.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasketLine {
    pub sku: String,
    pub quantity: u32,
}

/// How to pay: a processor (`test`, `free`) and its token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    pub processor: String,
    #[serde(default)]
    pub token: String,
}

/// A placed (or replayed) order.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: StoredOrder,
    /// False when an earlier request with the same idempotency key made it.
    pub created: bool,
    pub report: Option<DispatchReport>,
}

/// The order to create, validated against the catalog.
struct Priced {
    currency: Currency,
    lines: Vec<Line>,
    shipping: Money,
    total: Money,
}

impl OrderService {
    /// Places an order: validates it (a 422 names the field, nothing is
    /// charged), collects payment, creates the order and its lines `Open` in
    /// one transaction, then fulfills it and stores the outcome. In async
    /// mode the same transaction queues a fulfillment job instead, and the
    /// order is returned `Open`.
    ///
    /// With an idempotency key, the same key and body give the same order
    /// and one charge (a concurrent duplicate waits for the first); the same
    /// key with another body is a conflict.
    pub async fn place_order(&self, input: PlaceOrder, idempotency_key: Option<&str>) -> Result<Placed, OrderError> {
        let priced = self.price(&input).await?;
        if let Some(key) = idempotency_key {
            let hash = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&input).unwrap_or_default()));
            if let Some(existing) = self.claim_key(key, &hash).await? {
                return Ok(Placed {
                    order: existing,
                    created: false,
                    report: None,
                });
            }
        }
        let placed = self.pay_and_create(input, priced, idempotency_key).await;
        // No money moved (a decline, a processor error): the key is free for
        // another try. Once money moved, the key stays taken, so that a retry
        // of the request can never charge twice.
        if let (Err(error), Some(key)) = (&placed, idempotency_key) {
            if matches!(error, OrderError::PaidWithoutOrder { .. }) {
                self.mark_key_failed(key, &error.to_string()).await;
            } else {
                self.release_key_if_unused(key).await;
            }
        }
        let mut stored = placed?;
        if self.is_async() {
            self.jobs_queued.notify_one();
            return Ok(Placed {
                order: stored,
                created: true,
                report: None,
            });
        }
        let _guard = self.locks.lock(&stored.order.number).await;
        let report = self.fulfill_stored(&mut stored).await?;
        Ok(Placed {
            order: stored,
            created: true,
            report: Some(report),
        })
    }

    /// Checks the basket against the catalog and the client's total.
    async fn price(&self, input: &PlaceOrder) -> Result<Priced, OrderError> {
        let currency: Currency = input
            .currency
            .parse()
            .map_err(|error: crate::model::MoneyError| OrderError::invalid("currency", error.to_string()))?;
        if input.basket.is_empty() {
            return Err(OrderError::invalid("basket", "the basket is empty"));
        }
        if input.user.username.trim().is_empty() {
            return Err(OrderError::invalid("user.username", "must not be empty"));
        }
        let mut connection = self.db.pool().acquire().await?;
        let mut lines = Vec::with_capacity(input.basket.len());
        let mut subtotal = Money::zero(currency);
        for (index, item) in input.basket.iter().enumerate() {
            let field = |name: &str| format!("basket[{index}].{name}");
            if item.quantity == 0 {
                return Err(OrderError::invalid(field("quantity"), "must be at least 1"));
            }
            let product = storage::get_product(&mut connection, &item.sku)
                .await?
                .ok_or_else(|| OrderError::invalid(field("sku"), format!("unknown sku `{}`", item.sku)))?;
            if product.price.currency != currency {
                return Err(OrderError::invalid(
                    field("sku"),
                    format!("{} is priced in {}, the order is in {currency}", item.sku, product.price.currency),
                ));
            }
            let amount = product
                .price
                .checked_mul(item.quantity)
                .and_then(|amount| subtotal.checked_add(amount))
                .map_err(|error| OrderError::invalid(field("quantity"), error.to_string()))?;
            subtotal = amount;
            lines.push(Line {
                id: index as u64 + 1,
                product: Product {
                    sku: product.sku,
                    product_type: product.product_type,
                    title: product.title,
                    attributes: product.attributes,
                },
                quantity: item.quantity,
                unit_price: product.price,
                status: LineStatus::Open,
                fulfilled_by: None,
                attributes: BTreeMap::new(),
            });
        }
        let shipping = match &input.shipping_charge {
            Some(amount) => Money::parse(amount, currency)
                .map_err(|error| OrderError::invalid("shipping_charge", error.to_string()))?,
            None => Money::zero(currency),
        };
        let total = subtotal
            .checked_add(shipping)
            .map_err(|error| OrderError::invalid("shipping_charge", error.to_string()))?;
        let claimed = Money::parse(&input.total, currency).map_err(|error| OrderError::invalid("total", error.to_string()))?;
        if claimed != total {
            return Err(OrderError::invalid(
                "total",
                format!(
                    "is {} but the basket and shipping add up to {}",
                    claimed.to_decimal_string(),
                    total.to_decimal_string()
                ),
            ));
        }
        Ok(Priced {
            currency,
            lines,
            shipping,
            total,
        })
    }

    /// Claims the key, or returns the order an identical earlier request
    /// made (waiting for a concurrent one to finish).
    async fn claim_key(&self, key: &str, hash: &str) -> Result<Option<StoredOrder>, OrderError> {
        let started = tokio::time::Instant::now();
        loop {
            let mut connection = self.db.pool().acquire().await?;
            match storage::claim_idempotency_key(&mut connection, key, hash).await? {
                KeyClaim::Claimed => return Ok(None),
                KeyClaim::Existing { request_hash, .. } if request_hash != hash => {
                    return Err(OrderError::Conflict(format!(
                        "Idempotency-Key `{key}` was used for a different request"
                    )));
                }
                KeyClaim::Existing {
                    failure: Some(failure), ..
                } => {
                    return Err(OrderError::Conflict(format!(
                        "an earlier request with Idempotency-Key `{key}` failed after payment: {failure}"
                    )));
                }
                KeyClaim::Existing {
                    order_number: Some(number),
                    ..
                } => {
                    return storage::load_order(&mut connection, &number)
                        .await?
                        .map(Some)
                        .ok_or_else(|| OrderError::NotFound(format!("order {number}")));
                }
                KeyClaim::Existing { .. } => {
                    drop(connection);
                    if started.elapsed() > CONCURRENT_KEY_WAIT {
                        return Err(OrderError::Conflict(format!(
                            "a request with Idempotency-Key `{key}` is still being processed"
                        )));
                    }
                    tokio::time::sleep(CONCURRENT_KEY_POLL).await;
                }
            }
        }
    }

    async fn mark_key_failed(&self, key: &str, failure: &str) {
        let marked = async {
            let mut connection = self.db.pool().acquire().await?;
            storage::mark_key_failed(&mut connection, key, failure).await
        };
        if let Err(error) = marked.await {
            tracing::error!(key, %error, "cannot mark an idempotency key as failed after payment");
        }
    }

    async fn release_key_if_unused(&self, key: &str) {
        let released = async {
            let mut connection = self.db.pool().acquire().await?;
            storage::release_idempotency_key(&mut connection, key).await
        };
        if let Err(error) = released.await {
            tracing::error!(key, %error, "cannot release an idempotency key");
        }
    }

    /// Records the payment source, charges, records the `Paid` event, then
    /// creates the order in one transaction.
    async fn pay_and_create(&self, input: PlaceOrder, priced: Priced, idempotency_key: Option<&str>) -> Result<StoredOrder, OrderError> {
        let processor = input.payment.processor.as_str();
        // The source exists before any money moves: whatever happens next,
        // a charge is never without a record.
        let source_id = {
            let mut connection = self.db.pool().acquire().await?;
            storage::insert_payment_source(&mut connection, processor, "pending", priced.total, idempotency_key).await?
        };
        let receipt = match self.payments.charge(processor, &input.payment.token, priced.total) {
            Ok(receipt) => receipt,
            Err(error) => {
                let mut connection = self.db.pool().acquire().await?;
                let event = match &error {
                    PaymentError::Declined(_) => "Declined",
                    _ => "Error",
                };
                storage::insert_payment_event(&mut connection, source_id, event, 0, &error.to_string()).await?;
                return Err(error.into());
            }
        };
        let paid_without_order = |cause: crate::storage::StorageError| OrderError::PaidWithoutOrder {
            reference: receipt.reference.clone(),
            payment_source_id: source_id,
            cause,
        };
        {
            let mut connection = self.db.pool().acquire().await.map_err(|error| paid_without_order(error.into()))?;
            sqlx::query("UPDATE payment_sources SET reference = $1 WHERE id = $2")
                .bind(&receipt.reference)
                .bind(source_id)
                .execute(&mut *connection)
                .await
                .map_err(|error| paid_without_order(error.into()))?;
            storage::insert_payment_event(&mut connection, source_id, "Paid", priced.total.minor_units, &receipt.reference)
                .await
                .map_err(paid_without_order)?;
        }
        self.create_order(input, priced, source_id, idempotency_key)
            .await
            .map_err(paid_without_order)
    }

    async fn create_order(
        &self,
        input: PlaceOrder,
        priced: Priced,
        source_id: i64,
        idempotency_key: Option<&str>,
    ) -> Result<StoredOrder, crate::storage::StorageError> {
        let mut transaction = self.db.pool().begin().await?;
        let number =
            storage::next_order_number(&mut transaction, &self.settings.number_prefix, self.settings.first_number).await?;
        let now = time::OffsetDateTime::now_utc();
        let mut stored = StoredOrder {
            id: 0,
            order: Order {
                number,
                user: input.user,
                date_placed: now.replace_nanosecond(0).unwrap_or(now),
                currency: priced.currency,
                total: priced.total,
                email_opt_in: input.email_opt_in,
                basket_attributes: BTreeMap::new(),
                status: OrderStatus::Open,
                lines: priced.lines,
                notes: Vec::new(),
            },
            shipping_method: input.shipping_method.unwrap_or_else(|| "no-shipping-required".to_string()),
            shipping_charge: priced.shipping,
            billing_address: input.billing_address,
            payment_source_id: Some(source_id),
            stored_notes: 0,
        };
        stored.id = storage::insert_order(&mut transaction, &stored).await?;
        if self.is_async() {
            storage::insert_job(&mut transaction, stored.id, &stored.order.number, storage::now_ms()).await?;
        }
        if let Some(key) = idempotency_key {
            storage::set_key_order(&mut transaction, key, &stored.order.number).await?;
        }
        transaction.commit().await?;
        tracing::info!(order = %stored.order.number, total = %stored.order.total, "order placed");
        Ok(stored)
    }

    /// Runs dispatch on a stored order and stores the outcome, one
    /// fulfillment of an order at a time.
    pub(super) async fn fulfill_stored(&self, stored: &mut StoredOrder) -> Result<DispatchReport, OrderError> {
        let report = dispatch::fulfill_order(&self.runtime, &mut stored.order).await?;
        let mut transaction = self.db.pool().begin().await?;
        storage::save_fulfillment(&mut transaction, stored, &report).await?;
        transaction.commit().await?;
        Ok(report)
    }

    /// A page of orders matching `filter`, newest first.
    pub async fn list_orders(
        &self,
        filter: &storage::OrderFilter,
        page: u64,
        page_size: u64,
    ) -> Result<storage::OrderPage, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::list_orders(&mut connection, filter, page, page_size).await?)
    }

    /// The payment of a stored order, if it has one.
    pub async fn payment(&self, stored: &StoredOrder) -> Result<Option<storage::PaymentRecord>, OrderError> {
        let Some(id) = stored.payment_source_id else {
            return Ok(None);
        };
        let mut connection = self.db.pool().acquire().await?;
        Ok(Some(storage::payment_for_order(&mut connection, id).await?))
    }

    /// The order numbered `number`.
    pub async fn order(&self, number: &str) -> Result<StoredOrder, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        storage::load_order(&mut connection, number)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))
    }
}
