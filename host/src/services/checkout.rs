//! Checkout: validate, record the intent, charge, make the order.
//!
//! The reference's rule is payment first, then the order; ours adds that a
//! payment always becomes an order:
//!
//! 1. Validate everything (bounds, catalog, total) before anything is
//!    stored: a 422 names the field; nothing is charged.
//! 2. One transaction records the checkout (the validated request, the
//!    amount, the idempotency key), its payment source (`pending`) and a
//!    `checkout` job due after `[orders] checkout_grace_ms`.
//! 3. A second transaction takes the checkout (row lock, or SQLite's write
//!    lock) *before* the processor is called, so that a busy database
//!    refuses the checkout instead of stranding a payment; charges with the
//!    checkout's idempotency key; and, still in it, records the charge and
//!    creates the order, its lines and its `fulfill` job.
//! 4. If that transaction fails after the charge (or the process dies), the
//!    `checkout` job completes the checkout from its record: it asks the
//!    processor whether the charge went through, and makes the order
//!    without charging again, or abandons a checkout that moved no money.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;
use sqlx::AnyConnection;

use super::{OrderError, validate};
use crate::model::{Address, Currency, Line, LineStatus, Money, Order, OrderStatus, Product, Shipping, User};
use crate::metrics::{Metrics, PaymentOutcome};
use crate::payments::{PaymentError, Payments, Receipt};
use crate::queue::JobQueue;
use crate::settings::{FulfillmentMode, OrderSettings};
use crate::storage::{
    self, CheckoutRecord, CheckoutState, ClaimedJob, Database, JobKind, JobState, JobUpdate, OrderScope, StoredOrder,
};

/// How long a request waits for a concurrent request with the same
/// idempotency key to finish before answering 409.
const CONCURRENT_KEY_WAIT: Duration = Duration::from_secs(10);
const CONCURRENT_KEY_POLL: Duration = Duration::from_millis(25);

/// A checkout, as the storefront sends it. docs/api.md gives every bound.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub user: User,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub basket: Vec<BasketLine>,
    /// Default "no-shipping-required".
    #[serde(default)]
    #[schema(max_length = 128, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub shipping_method: Option<String>,
    /// Decimal string, not negative; default 0.
    #[serde(default)]
    #[schema(max_length = 24, pattern = r"^[0-9]+(\.[0-9]+)?$")]
    pub shipping_charge: Option<String>,
    /// Where the invoice goes. Every field is optional; a field not in
    /// the record is refused (422 naming it); `{}` is no address.
    // Taken as the JSON the storefront sent, and read into an `Address`
    // only after a replay of the key was looked for
    // (`validate::addresses`): the request's hash is of the address as
    // sent, as it was when this was a free JSON object (keys sorted, nulls
    // kept), and a key whose checkout was made from such an object before
    // the upgrade replays, whatever the record would make of it.
    #[serde(default)]
    #[schema(value_type = Option<Address>)]
    pub billing_address: Value,
    /// Where physical goods go; as `billing_address`.
    // Not in the hash when absent or null: bodies sent before the upgrade
    // could not have it.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Option<Address>)]
    pub shipping_address: Value,
    /// The total the storefront showed: must equal lines + shipping.
    #[schema(max_length = 24, pattern = r"^[0-9]+(\.[0-9]+)?$")]
    pub total: String,
    /// ISO 4217; every product must be priced in it.
    #[schema(value_type = crate::model::Currency)]
    pub currency: String,
    pub payment: PaymentInput,
    #[serde(default)]
    pub email_opt_in: bool,
}

/// A basket line: a sku and how many.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasketLine {
    #[schema(min_length = 1, max_length = 128, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: u32,
}

/// How to pay: a processor (`test`, `free`) and its token. The token is the
/// payer's secret: it goes to the processor only (never stored, logged or
/// answered; its `Debug` hides it).
#[derive(Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    #[schema(max_length = 128, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub processor: String,
    #[serde(default)]
    #[schema(max_length = 255, pattern = r"^[^\x00-\x1F\x7F]*$")]
    pub token: String,
}

impl std::fmt::Debug for PaymentInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PaymentInput")
            .field("processor", &self.processor)
            .field("token", &"<hidden>")
            .finish()
    }
}

/// What placing an order gave.
#[derive(Debug)]
pub enum Placed {
    /// A new order, and (in sync mode) its fulfillment job, leased to this
    /// host, for the executor to run now.
    Created { order: StoredOrder, job: Option<ClaimedJob> },
    /// An earlier request with the same idempotency key made this order.
    Replayed(StoredOrder),
}

/// The order to create, validated against the catalog.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Priced {
    lines: Vec<PricedLine>,
    shipping_minor: i64,
    total_minor: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PricedLine {
    sku: String,
    product_type: String,
    title: String,
    attributes: BTreeMap<String, String>,
    quantity: u32,
    unit_price_minor: i64,
}

/// What a checkout record keeps of the request: everything the order
/// needs, priced; never the payment token. The `checkout` job makes the
/// order from it after a crash, so it holds all the order holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CheckoutIntent {
    user: User,
    shipping_method: String,
    /// Records made before addresses were records hold the billing address
    /// as the storefront sent it (any JSON object): read leniently.
    #[serde(default, deserialize_with = "stored_address")]
    billing_address: Option<Address>,
    /// Absent from records made before migration 6.
    #[serde(default, deserialize_with = "stored_address")]
    shipping_address: Option<Address>,
    email_opt_in: bool,
    currency: String,
    priced: Priced,
}

/// Places orders and completes checkouts whose request did not.
#[derive(Clone)]
pub struct CheckoutService {
    db: Database,
    payments: Payments,
    queue: JobQueue,
    settings: OrderSettings,
    mode: FulfillmentMode,
    /// Counts payment outcomes and orders placed.
    metrics: Metrics,
}

impl CheckoutService {
    pub fn new(
        db: Database,
        payments: Payments,
        queue: JobQueue,
        settings: OrderSettings,
        mode: FulfillmentMode,
        metrics: Metrics,
    ) -> CheckoutService {
        CheckoutService {
            db,
            payments,
            queue,
            settings,
            mode,
            metrics,
        }
    }

    /// Places an order for the API token named `placed_by`, which sees
    /// `scope` (see the module's documentation). With an idempotency key,
    /// the same key and body give the same order and one charge (a
    /// concurrent duplicate waits for the first); the same key with another
    /// body is a conflict, and so is a key whose order `scope` does not
    /// cover (it is not shown). A token limited to a user places orders for
    /// that user only.
    pub async fn place_order(
        &self,
        input: PlaceOrder,
        idempotency_key: Option<&str>,
        placed_by: &str,
        scope: &OrderScope,
    ) -> Result<Placed, OrderError> {
        validate::checkout(&input)?;
        if let Some(username) = &scope.username
            && input.user.username != *username
        {
            return Err(OrderError::invalid(
                "user.username",
                format!("this API token places orders for user `{username}` only"),
            ));
        }
        if let Some(key) = idempotency_key {
            validate::idempotency_key(key)?;
        }
        let currency: Currency = input
            .currency
            .parse()
            .map_err(|error: crate::model::MoneyError| OrderError::invalid("currency", error.to_string()))?;
        let request_hash = request_hash(&input);
        let addresses = match validate::addresses(&input) {
            Ok(addresses) => addresses,
            Err(refusal) => {
                // A body the host took before addresses were records (a
                // key outside the record, a number, a field too long) may
                // hold a checkout that charged: its retry gets its order,
                // not "nothing was charged".
                if let Some(key) = idempotency_key
                    && let Some(order) = self.replay_of_key(key, &request_hash, scope).await?
                {
                    return Ok(Placed::Replayed(order));
                }
                return Err(refusal);
            }
        };
        let priced = self.price(&input, currency).await?;
        let intent = CheckoutIntent {
            user: input.user,
            shipping_method: input.shipping_method.unwrap_or_else(|| Shipping::NONE.to_string()),
            billing_address: addresses.billing,
            shipping_address: addresses.shipping,
            email_opt_in: input.email_opt_in,
            currency: currency.code().to_string(),
            priced,
        };
        let total = Money {
            minor_units: intent.priced.total_minor,
            currency,
        };
        let processor = input.payment.processor;
        self.payments.accepts(&processor, total).map_err(|error| OrderError::invalid("payment.processor", error.to_string()))?;
        let checkout = loop {
            match self.record(&intent, &request_hash, &processor, total, idempotency_key, placed_by).await? {
                Recorded::New(checkout) => break checkout,
                Recorded::Existing(existing) => {
                    if let Some(order) = self.replay(existing, &request_hash, scope).await? {
                        return Ok(Placed::Replayed(order));
                    }
                    // The earlier checkout of this key moved no money and
                    // gave its key back: record ours.
                }
            }
        };
        // Step 3 moves money: it runs in a task of its own, which a dropped
        // request does not cancel (it makes the order right away instead
        // of leaving it to the checkout's job).
        let service = self.clone();
        let token = input.payment.token;
        let checkout_id = checkout.id;
        tokio::spawn(async move { service.charge_and_create(&checkout, &intent, &token, total).await })
            .await
            .unwrap_or_else(|failure| {
                Err(OrderError::CheckoutPending {
                    checkout_id,
                    message: format!(
                        "checkout {checkout_id} failed while it was being paid ({failure}); it becomes an order if \
                         its payment went through: send the request again later with the same Idempotency-Key"
                    ),
                })
            })
    }

    /// Checks the basket against the catalog and the client's total.
    async fn price(&self, input: &PlaceOrder, currency: Currency) -> Result<Priced, OrderError> {
        let skus: Vec<&str> = input.basket.iter().map(|item| item.sku.as_str()).collect();
        let products: HashMap<String, storage::CatalogProduct> = {
            let mut connection = self.db.pool().acquire().await?;
            storage::get_products(&mut connection, &skus)
                .await?
                .into_iter()
                .map(|product| (product.sku.clone(), product))
                .collect()
        };
        let mut lines = Vec::with_capacity(input.basket.len());
        let mut subtotal = Money::zero(currency);
        for (index, item) in input.basket.iter().enumerate() {
            let field = |name: &str| format!("basket[{index}].{name}");
            let product = products
                .get(&item.sku)
                .ok_or_else(|| OrderError::invalid(field("sku"), format!("unknown sku `{}`", item.sku)))?;
            if product.price.currency != currency {
                return Err(OrderError::invalid(
                    field("sku"),
                    format!("{} is priced in {}, the order is in {currency}", item.sku, product.price.currency),
                ));
            }
            subtotal = product
                .price
                .checked_mul(item.quantity)
                .and_then(|amount| subtotal.checked_add(amount))
                .map_err(|error| OrderError::invalid(field("quantity"), error.to_string()))?;
            lines.push(PricedLine {
                sku: product.sku.clone(),
                product_type: product.product_type.clone(),
                title: product.title.clone(),
                attributes: product.attributes.clone(),
                quantity: item.quantity,
                unit_price_minor: product.price.minor_units,
            });
        }
        let shipping = match &input.shipping_charge {
            Some(amount) => Money::parse(amount, currency)
                .map_err(|error| OrderError::invalid("shipping_charge", error.to_string()))?,
            None => Money::zero(currency),
        };
        if shipping.minor_units < 0 {
            return Err(OrderError::invalid("shipping_charge", "must not be negative"));
        }
        let total = subtotal
            .checked_add(shipping)
            .map_err(|error| OrderError::invalid("shipping_charge", error.to_string()))?;
        let claimed = Money::parse(&input.total, currency).map_err(|error| OrderError::invalid("total", error.to_string()))?;
        if claimed.minor_units < 0 {
            return Err(OrderError::invalid("total", "must not be negative"));
        }
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
            lines,
            shipping_minor: shipping.minor_units,
            total_minor: total.minor_units,
        })
    }

    /// Step 2: records the checkout, its payment source and its recovery
    /// job, or finds the checkout that holds the key.
    async fn record(
        &self,
        intent: &CheckoutIntent,
        request_hash: &str,
        processor: &str,
        total: Money,
        idempotency_key: Option<&str>,
        placed_by: &str,
    ) -> Result<Recorded, OrderError> {
        let request = serde_json::to_string(intent).map_err(|error| OrderError::invalid("body", error.to_string()))?;
        let mut transaction = self.db.begin_write().await?;
        if let Some(key) = idempotency_key
            && let Some(existing) = storage::checkout_by_key(&mut transaction, key).await?
        {
            // Ended, not dropped: the replay reads the checkout's order
            // through the pool, which sees it once its group committed.
            transaction.rollback().await?;
            return Ok(Recorded::Existing(existing));
        }
        let source_id = storage::insert_payment_source(&mut transaction, processor, "pending", total, idempotency_key).await?;
        let checkout = storage::NewCheckout {
            idempotency_key,
            request_hash,
            request: &request,
            processor,
            amount_minor: total.minor_units,
            currency: total.currency.code(),
            payment_source_id: source_id,
            placed_by: Some(placed_by),
        };
        let id = match storage::insert_checkout(&mut transaction, &checkout).await {
            Ok(id) => id,
            // A concurrent request took the key first: replay it.
            Err(error) if error.is_unique_violation() => {
                drop(transaction);
                let key = idempotency_key.unwrap_or_default();
                let mut connection = self.db.pool().acquire().await?;
                return match storage::checkout_by_key(&mut connection, key).await? {
                    Some(existing) => Ok(Recorded::Existing(existing)),
                    None => Err(OrderError::Conflict(format!("Idempotency-Key `{key}` was released meanwhile; send it again"))),
                };
            }
            Err(error) => return Err(error.into()),
        };
        let grace = Duration::from_millis(self.settings.checkout_grace_ms);
        self.queue.enqueue(&mut transaction, JobKind::Checkout, id, None, grace).await?;
        transaction.commit().await?;
        Ok(Recorded::New(CheckoutRecord {
            id,
            idempotency_key: idempotency_key.map(str::to_string),
            request_hash: request_hash.to_string(),
            request,
            processor: processor.to_string(),
            amount_minor: total.minor_units,
            currency: total.currency.code().to_string(),
            payment_source_id: source_id,
            state: CheckoutState::Pending,
            order_number: None,
            failure: None,
            placed_by: Some(placed_by.to_string()),
        }))
    }

    /// The order the checkout holding `key` made, if the key holds one
    /// (see `replay`); None when it holds none.
    async fn replay_of_key(&self, key: &str, request_hash: &str, scope: &OrderScope) -> Result<Option<StoredOrder>, OrderError> {
        let existing = {
            let mut connection = self.db.pool().acquire().await?;
            storage::checkout_by_key(&mut connection, key).await?
        };
        match existing {
            Some(existing) => self.replay(existing, request_hash, scope).await,
            None => Ok(None),
        }
    }

    /// The order an earlier checkout with the same key made, waiting for
    /// one in progress; None when that checkout moved no money and gave the
    /// key back.
    async fn replay(
        &self,
        mut existing: CheckoutRecord,
        request_hash: &str,
        scope: &OrderScope,
    ) -> Result<Option<StoredOrder>, OrderError> {
        let key = existing.idempotency_key.clone().unwrap_or_default();
        // Whose checkout it is comes first: one outside the token's scope
        // (another token's, another user's, or one recorded before checkouts
        // kept their token) is not shown, nor whether its body matched. The
        // answer is the same as for a key reused with another body, so that
        // it tells no one which keys other storefronts use.
        let not_yours = || {
            OrderError::Conflict(format!(
                "Idempotency-Key `{key}` is already used, by a request with another body or by a checkout \
                 outside this API token's scope: use a new key"
            ))
        };
        if scope.placed_by.as_ref().is_some_and(|name| existing.placed_by.as_ref() != Some(name)) {
            return Err(not_yours());
        }
        if let Some(username) = &scope.username {
            // Checkouts recorded before migration 3 kept no request: unknown.
            let request = serde_json::from_str::<serde_json::Value>(&existing.request).ok();
            let holder = request.as_ref().and_then(|request| request.pointer("/user/username")).and_then(|name| name.as_str());
            if holder != Some(username.as_str()) {
                return Err(not_yours());
            }
        }
        if existing.request_hash != request_hash {
            return Err(not_yours());
        }
        let started = tokio::time::Instant::now();
        loop {
            match existing.state {
                CheckoutState::Ordered => {
                    let number = existing.order_number.unwrap_or_default();
                    let mut connection = self.db.pool().acquire().await?;
                    let stored = storage::load_order(&mut connection, &number)
                        .await?
                        .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
                    return if scope.covers(&stored) { Ok(Some(stored)) } else { Err(not_yours()) };
                }
                CheckoutState::Declined | CheckoutState::Abandoned => return Ok(None),
                CheckoutState::Pending if started.elapsed() > CONCURRENT_KEY_WAIT => {
                    return Err(OrderError::CheckoutPending {
                        checkout_id: existing.id,
                        message: format!(
                            "a request with Idempotency-Key `{key}` is still being processed; its order is made from \
                             the checkout record if its payment went through: send the request again later"
                        ),
                    });
                }
                CheckoutState::Pending => {
                    tokio::time::sleep(CONCURRENT_KEY_POLL).await;
                    let mut connection = self.db.pool().acquire().await?;
                    existing = storage::load_checkout(&mut connection, existing.id)
                        .await?
                        .ok_or_else(|| OrderError::NotFound(format!("checkout {}", existing.id)))?;
                }
            }
        }
    }

    /// Step 3: takes the checkout, charges, and makes the order, in one
    /// transaction (run in a spawned task by `place_order`).
    async fn charge_and_create(
        &self,
        checkout: &CheckoutRecord,
        intent: &CheckoutIntent,
        token: &str,
        total: Money,
    ) -> Result<Placed, OrderError> {
        let (checkout_id, processor) = (checkout.id, checkout.processor.as_str());
        // What the order insert needs is taken before any money moves: a
        // connection, and the checkout's lock (SQLite's write lock). The
        // charge goes by what this transaction reads: it must all be on disk
        // (settled: no other transaction's work that may not commit).
        let mut transaction = self.db.begin_write_settled().await.map_err(nothing_charged)?;
        if !storage::hold_pending_checkout(&mut transaction, checkout_id).await.map_err(nothing_charged)? {
            return Err(OrderError::Conflict(format!(
                "checkout {checkout_id} was completed or abandoned by the host's recovery meanwhile; nothing was charged by this request"
            )));
        }
        let key = charge_key(checkout_id);
        let charged = match self.payments.charge(processor, token, total, &key) {
            // A processor failure may come after the money moved (a time-out
            // of a charge that went through): ask the processor which.
            Err(PaymentError::Processor(failure)) => match self.payments.find_charge(processor, &key) {
                Ok(Some(receipt)) => Ok(receipt),
                Ok(None) => Err(PaymentError::Processor(failure)),
                Err(_) => {
                    // Unknown: the checkout stays pending, and its job asks
                    // the processor again.
                    self.metrics.payment(processor, PaymentOutcome::Unknown);
                    transaction.rollback().await?;
                    self.bring_forward(checkout_id).await;
                    return Err(OrderError::CheckoutPending {
                        checkout_id,
                        message: format!(
                            "the payment processor failed ({failure}) and cannot say whether it charged; checkout \
                             {checkout_id} becomes an order if it did: send the request again later with the same \
                             Idempotency-Key"
                        ),
                    });
                }
            },
            other => other,
        };
        let receipt = match charged {
            Ok(receipt) => {
                self.metrics.payment(processor, PaymentOutcome::Authorized);
                receipt
            }
            // Nothing moved: a decline, a processor that failed before
            // charging, a payment this processor does not take.
            Err(error) => {
                let (event, outcome) = match &error {
                    PaymentError::Declined(_) => ("Declined", PaymentOutcome::Declined),
                    _ => ("Error", PaymentOutcome::Failed),
                };
                self.metrics.payment(processor, outcome);
                storage::insert_payment_event(&mut transaction, checkout.payment_source_id, event, 0, &error.to_string()).await?;
                storage::set_payment_state(&mut transaction, checkout.payment_source_id, storage::SourceState::Refused).await?;
                storage::mark_checkout_unpaid(&mut transaction, checkout_id, CheckoutState::Declined, &error.to_string()).await?;
                self.queue.complete(&mut transaction, JobKind::Checkout, checkout_id).await?;
                transaction.commit().await?;
                return Err(error.into());
            }
        };
        // Crash tests: the process dies between the charge and the order.
        fail::fail_point!("checkout-after-charge", |_| std::process::abort());
        let run_here = self.mode == FulfillmentMode::Sync;
        let created = match self.create_order(&mut transaction, checkout, intent, &receipt, run_here).await {
            // The checkout's job has nothing left to do.
            Ok(created) => self.queue.complete(&mut transaction, JobKind::Checkout, checkout_id).await.map(|()| created),
            Err(error) => Err(error),
        };
        let committed = match created {
            Ok(created) => transaction.commit().await.map(|()| created).map_err(storage::StorageError::from),
            Err(error) => {
                // Let go of the checkout (and SQLite's write lock) at once.
                if let Err(rollback) = transaction.rollback().await {
                    tracing::warn!(checkout = checkout_id, %rollback, "cannot roll back a failed checkout");
                }
                Err(error)
            }
        };
        match committed {
            Ok((order, job)) => {
                self.metrics.order_placed();
                tracing::info!(order = %order.order.number, total = %order.order.total, "order placed");
                if job.is_none() {
                    self.queue.wake();
                }
                Ok(Placed::Created { order, job })
            }
            Err(error) => {
                tracing::error!(checkout = checkout_id, reference = %receipt.reference, %error,
                    "payment taken but the order could not be stored; the checkout job completes it");
                self.bring_forward(checkout_id).await;
                Err(OrderError::CheckoutPending {
                    checkout_id,
                    message: format!(
                        "payment {} was taken, but the order could not be stored yet ({error}); it is made from \
                         checkout {checkout_id}'s record shortly: send the request again with the same \
                         Idempotency-Key to get it",
                        receipt.reference
                    ),
                })
            }
        }
    }

    /// Makes the checkout's job due now (rather than after the grace),
    /// if the database takes it; reopens a checkout that the job abandoned
    /// meanwhile (it could, had the database dropped this request's lock
    /// while the processor was charging): this request knows it charged.
    async fn bring_forward(&self, checkout_id: i64) {
        let brought = async {
            let mut transaction = self.db.begin_write().await?;
            if storage::reopen_abandoned_checkout(&mut transaction, checkout_id).await? {
                tracing::error!(checkout = checkout_id, "reopened a checkout abandoned while its charge went through");
            }
            self.queue.make_due_now(&mut transaction, JobKind::Checkout, checkout_id).await?;
            transaction.commit().await?;
            Ok::<(), storage::StorageError>(())
        };
        if let Err(error) = brought.await {
            tracing::warn!(checkout = checkout_id, %error, "cannot bring the checkout's job forward; it runs after the grace");
        }
        self.queue.wake();
    }

    /// Records the charge, creates the order, its lines and its fulfillment
    /// job, and marks the checkout ordered, all in `transaction`, which
    /// holds the checkout. With `run_here`, the job is leased to this host
    /// for the executor to run at once (sync mode).
    async fn create_order(
        &self,
        transaction: &mut AnyConnection,
        checkout: &CheckoutRecord,
        intent: &CheckoutIntent,
        receipt: &Receipt,
        run_here: bool,
    ) -> Result<(StoredOrder, Option<ClaimedJob>), storage::StorageError> {
        let currency: Currency = intent.currency.parse().map_err(|error: crate::model::MoneyError| {
            storage::StorageError::Corrupt {
                table: "checkouts",
                message: error.to_string(),
            }
        })?;
        let money = |minor_units: i64| Money { minor_units, currency };
        storage::set_payment_reference(transaction, checkout.payment_source_id, &receipt.reference).await?;
        storage::insert_payment_event(transaction, checkout.payment_source_id, "Paid", checkout.amount_minor, &receipt.reference)
            .await?;
        let number = storage::next_order_number(transaction, &self.settings.number_prefix, self.settings.first_number).await?;
        let now = time::OffsetDateTime::now_utc();
        let lines = intent
            .priced
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| Line {
                id: index as u64 + 1,
                product: Product {
                    sku: line.sku.clone(),
                    product_type: line.product_type.clone(),
                    title: line.title.clone(),
                    attributes: line.attributes.clone(),
                },
                quantity: line.quantity,
                unit_price: money(line.unit_price_minor),
                status: LineStatus::Open,
                fulfilled_by: None,
                attributes: BTreeMap::new(),
            })
            .collect();
        let mut stored = StoredOrder {
            id: 0,
            order: Order {
                number,
                user: intent.user.clone(),
                date_placed: now.replace_nanosecond(0).unwrap_or(now),
                currency,
                total: money(intent.priced.total_minor),
                email_opt_in: intent.email_opt_in,
                basket_attributes: BTreeMap::new(),
                shipping: Shipping {
                    method: intent.shipping_method.clone(),
                    charge: money(intent.priced.shipping_minor),
                },
                billing_address: intent.billing_address.clone(),
                shipping_address: intent.shipping_address.clone(),
                status: OrderStatus::Open,
                lines,
                notes: Vec::new(),
            },
            payment_source_id: Some(checkout.payment_source_id),
            placed_by: checkout.placed_by.clone(),
            stored_notes: 0,
        };
        stored.id = storage::insert_order(transaction, &stored).await?;
        let number = stored.order.number.as_str();
        let job = if run_here {
            Some(self.queue.enqueue_leased(transaction, JobKind::Fulfill, stored.id, Some(number)).await?)
        } else {
            self.queue.enqueue(transaction, JobKind::Fulfill, stored.id, Some(number), Duration::ZERO).await?;
            None
        };
        storage::mark_checkout_ordered(transaction, checkout.id, number).await?;
        Ok((stored, job))
    }

    /// Runs the `checkout` job of a checkout whose request did not finish:
    /// makes its order if the processor charged it (without charging
    /// again), abandons it if not. Stores the outcome and the job's end in
    /// one transaction.
    pub async fn complete(&self, job: &ClaimedJob) -> Result<(), OrderError> {
        // Settled: it asks the processor on what it read.
        let mut transaction = self.db.begin_write_settled().await?;
        let done = JobUpdate {
            state: JobState::Done,
            attempts: job.attempts,
            retry_in_ms: 0,
            last_error: None,
        };
        if !storage::hold_pending_checkout(&mut transaction, job.subject_id).await? {
            // Its request made the order (or gave up) after all.
            self.queue.finish(&mut transaction, job, &done).await?;
            transaction.commit().await?;
            return Ok(());
        }
        let checkout = storage::load_checkout(&mut transaction, job.subject_id)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("checkout {}", job.subject_id)))?;
        let found = self
            .payments
            .find_charge(&checkout.processor, &charge_key(checkout.id))
            .map_err(OrderError::Payment)?;
        let placed = found.is_some();
        match found {
            Some(receipt) => {
                let intent: CheckoutIntent = serde_json::from_str(&checkout.request)
                    .map_err(|error| OrderError::Corrupt(format!("checkout {}'s request: {error}", checkout.id)))?;
                let (order, _) = self.create_order(&mut transaction, &checkout, &intent, &receipt, false).await?;
                tracing::warn!(checkout = checkout.id, order = %order.order.number, reference = %receipt.reference,
                    "completed a paid checkout whose request did not finish");
            }
            None => {
                let why = "the request ended before its payment went through; nothing was charged";
                storage::mark_checkout_unpaid(&mut transaction, checkout.id, CheckoutState::Abandoned, why).await?;
                storage::insert_payment_event(&mut transaction, checkout.payment_source_id, "Abandoned", 0, why).await?;
                storage::set_payment_state(&mut transaction, checkout.payment_source_id, storage::SourceState::Abandoned)
                    .await?;
                tracing::info!(checkout = checkout.id, "abandoned a checkout that moved no money");
            }
        }
        if !self.queue.finish(&mut transaction, job, &done).await? {
            transaction.rollback().await?;
            return Err(OrderError::Conflict(format!("lost the lease of checkout {}'s job", checkout.id)));
        }
        transaction.commit().await?;
        let processor = checkout.processor.as_str();
        if placed {
            self.metrics.payment(processor, PaymentOutcome::Settled);
            self.metrics.order_placed();
        } else {
            self.metrics.payment(processor, PaymentOutcome::Abandoned);
        }
        self.queue.wake();
        Ok(())
    }
}

/// The digest that tells a replay (the same body) from a reused key: of
/// the body as the storefront sent it (its addresses' JSON, keys sorted by
/// serde_json's map), in `PlaceOrder`'s field order.
fn request_hash(input: &PlaceOrder) -> String {
    hex::encode(sha2::Sha256::digest(serde_json::to_vec(input).unwrap_or_default()))
}

/// An address in a checkout record: the record's own (an [`Address`]), or
/// the free JSON object an older record kept, through
/// [`Address::from_stored_json`].
fn stored_address<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Address>, D::Error> {
    let value = <Value as serde::Deserialize>::deserialize(deserializer)?;
    Ok(Address::from_stored_json(&value))
}

/// The processor's idempotency key of checkout `id`'s charge.
fn charge_key(id: i64) -> String {
    format!("checkout-{id}")
}

enum Recorded {
    /// Recorded now, as stored.
    New(CheckoutRecord),
    Existing(CheckoutRecord),
}

/// A failure before the processor was called.
fn nothing_charged(error: impl Into<storage::StorageError>) -> OrderError {
    OrderError::Busy(format!("the database could not take the checkout; nothing was charged: {}", error.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkout recorded before addresses were records (its billing
    /// address as the storefront sent it, no shipping address) still makes
    /// its order after an upgrade: its job reads the address's fields.
    #[test]
    fn an_older_checkout_record_still_reads() {
        let old = r#"{"user": {"username": "alice", "email": "alice@example.com"}, "shipping_method": "no-shipping-required",
            "billing_address": {"first_name": "Alice", "country": "US", "company": "edX", "line1": 12},
            "email_opt_in": false, "currency": "USD",
            "priced": {"lines": [], "shipping_minor": 0, "total_minor": 0}}"#;
        let intent: CheckoutIntent = serde_json::from_str(old).expect("an old record");
        let billing = intent.billing_address.expect("the billing address");
        assert_eq!((billing.first_name.as_deref(), billing.country.as_deref(), billing.line1), (Some("Alice"), Some("US"), None));
        assert_eq!(intent.shipping_address, None);
        let none = old.replace(r#"{"first_name": "Alice", "country": "US", "company": "edX", "line1": 12}"#, "null");
        let intent: CheckoutIntent = serde_json::from_str(&none).expect("an old record without an address");
        assert_eq!(intent.billing_address, None);

        // A record made now reads back as it was written.
        let shipping_address = Some(Address { line1: Some("1 Main St".into()), country: Some("GB".into()), ..Address::default() });
        let written = CheckoutIntent { shipping_address: shipping_address.clone(), ..intent };
        let read: CheckoutIntent = serde_json::from_str(&serde_json::to_string(&written).expect("JSON")).expect("a record");
        assert_eq!((read.billing_address, read.shipping_address), (None, shipping_address));
    }

    /// A body without a shipping address hashes as it did when the billing
    /// address was a free JSON object (serde_json sorts an object's keys):
    /// an Idempotency-Key sent before the upgrade replays after it.
    #[test]
    fn a_body_hashes_as_before_addresses_were_records() {
        let body = r#"{"user": {"username": "alice", "email": "alice@example.com"},
            "basket": [{"sku": "SEAT", "quantity": 1}],
            "billing_address": {"first_name": "Alice", "last_name": "Smith", "line1": "1 Main St", "line2": "",
                "city": "Cambridge", "state": "MA", "postcode": "02139", "country": "US"},
            "total": "49.00", "currency": "USD", "payment": {"processor": "test", "token": "tok_success"}}"#;
        let input: PlaceOrder = serde_json::from_str(body).expect("a checkout");
        // What the release before this one hashed for the same body.
        let before = concat!(
            r#"{"user":{"username":"alice","email":"alice@example.com"},"basket":[{"sku":"SEAT","quantity":1}],"#,
            r#""shipping_method":null,"shipping_charge":null,"#,
            r#""billing_address":{"city":"Cambridge","country":"US","first_name":"Alice","last_name":"Smith","#,
            r#""line1":"1 Main St","line2":"","postcode":"02139","state":"MA"},"#,
            r#""total":"49.00","currency":"USD","payment":{"processor":"test","token":"tok_success"},"email_opt_in":false}"#
        );
        assert_eq!(request_hash(&input), hex::encode(sha2::Sha256::digest(before.as_bytes())));
        let mut empty: Value = serde_json::from_str(body).expect("JSON");
        empty["billing_address"] = serde_json::json!({});
        let empty: PlaceOrder = serde_json::from_value(empty).expect("a checkout");
        assert!(serde_json::to_string(&empty).expect("JSON").contains(r#""billing_address":{},"total""#), "`{{}}` as before");
    }

    /// The hash is of the addresses as sent, as it was when the billing
    /// address was a free JSON object: a `null` field and a key the record
    /// does not have are part of it (the record drops the one and refuses
    /// the other, but only after a replay of the key was looked for).
    #[test]
    fn a_body_hashes_with_its_address_as_sent() {
        let body = r#"{"user": {"username": "alice", "email": "alice@example.com"},
            "basket": [{"sku": "SEAT", "quantity": 1}],
            "billing_address": {"first_name": "Alice", "line2": null, "company": "edX", "postcode": 2139},
            "total": "49.00", "currency": "USD", "payment": {"processor": "test", "token": "tok_success"}}"#;
        let input: PlaceOrder = serde_json::from_str(body).expect("a body is taken before its addresses are read");
        // What the release before addresses were records hashed for it.
        let before = concat!(
            r#"{"user":{"username":"alice","email":"alice@example.com"},"basket":[{"sku":"SEAT","quantity":1}],"#,
            r#""shipping_method":null,"shipping_charge":null,"#,
            r#""billing_address":{"company":"edX","first_name":"Alice","line2":null,"postcode":2139},"#,
            r#""total":"49.00","currency":"USD","payment":{"processor":"test","token":"tok_success"},"email_opt_in":false}"#
        );
        assert_eq!(request_hash(&input), hex::encode(sha2::Sha256::digest(before.as_bytes())));
    }
}
