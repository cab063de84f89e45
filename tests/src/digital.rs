//! Stand-ins for the two services the JavaScript and Python example
//! modules call (plugins/gift-card, plugins/subscription): a gift-card
//! service and a subscription service, both served by [`DigitalServices`] on
//! one loopback port (start one per module to take one down alone). The
//! contract, as the modules' READMEs document it:
//!
//! - `POST /api/v1/cards` `{"amount": {"minor_units", "currency"},
//!   "recipient_email", ...}` with `Idempotency-Key`: 201 `{"code",
//!   "amount", "recipient_email", "status": "active"}`; the same key again:
//!   200 with the same card (nothing new is issued).
//! - `POST /api/v1/cards/{code}/cancel`: 200 `{"code", "status":
//!   "cancelled"}` (again 200 when already cancelled); 404 `{"message"}`
//!   for an unknown code.
//! - `POST /api/v1/subscriptions` `{"plan", "months", "subscriber":
//!   {"username", "email"}, ...}` with `Idempotency-Key`: 201 `{"id", "plan",
//!   "months", "status": "active"}`; the same key again: 200, the same one.
//! - `POST /api/v1/subscriptions/{id}/cancel`: 200 `{"id", "status":
//!   "cancelled"}`; 404 for an unknown id.
//!
//! A request without `Idempotency-Key`, or with a body that is not the JSON
//! above, is 400 `{"message"}`. With [`DigitalServices::require_api_key`]
//! every request must carry `X-Api-Key` with that value (else 401). With
//! [`DigitalServices::fail_with`] every request is answered with that
//! status and `{"message": "injected failure"}`, and changes nothing; with
//! [`DigitalServices::hang`] it reads each request and never answers. Every
//! request is recorded with the status it got ([`DigitalServices::requests`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The message of an injected failure.
pub const INJECTED_FAILURE: &str = "injected failure";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub api_key: Option<String>,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
    pub status: u16,
}

/// A gift card the service issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub code: String,
    pub minor_units: i64,
    pub currency: String,
    pub recipient_email: String,
    pub cancelled: bool,
}

/// A subscription the service granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub plan: String,
    pub months: u32,
    pub email: String,
    pub billing_country: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Default)]
struct Books {
    fail_with: Option<u16>,
    hang: bool,
    api_key: Option<String>,
    requests: Vec<RecordedRequest>,
    cards: Vec<Card>,
    /// Idempotency key -> index in `cards`.
    card_keys: HashMap<String, usize>,
    subscriptions: Vec<Subscription>,
    subscription_keys: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Books>>;

fn lock(books: &Shared) -> MutexGuard<'_, Books> {
    books.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running stand-ins; stop when dropped (or, waiting until the port is
/// closed, with [`DigitalServices::stop`]).
pub struct DigitalServices {
    addr: SocketAddr,
    books: Shared,
    shutdown: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl DigitalServices {
    /// Starts on a free loopback port.
    pub async fn start() -> anyhow::Result<DigitalServices> {
        DigitalServices::start_on("127.0.0.1:0".parse()?).await
    }

    /// Starts on `addr` (an address a stopped stand-in had: the service is back).
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<DigitalServices> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let books = Shared::default();
        let app = Router::new()
            .route("/api/v1/cards", post(issue_card))
            .route("/api/v1/cards/{code}/cancel", post(cancel_card))
            .route("/api/v1/subscriptions", post(grant_subscription))
            .route("/api/v1/subscriptions/{id}/cancel", post(cancel_subscription))
            .with_state(books.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "digital services stand-in stopped");
            }
        });
        Ok(DigitalServices {
            addr,
            books,
            shutdown,
            server,
        })
    }

    /// Stops answering and returns once the port is closed: connections to
    /// it are refused until a stand-in starts again on the address.
    pub async fn stop(self) -> SocketAddr {
        let _ = self.shutdown.send(());
        let _ = self.server.await;
        self.addr
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers every request with `status` from now on (`None`: normally again).
    pub fn fail_with(&self, status: Option<u16>) {
        lock(&self.books).fail_with = status;
    }

    /// Reads every request from now on and never answers it (a caller's
    /// time-out is the only way out).
    pub fn hang(&self) {
        lock(&self.books).hang = true;
    }

    /// Refuses (401) every request without `X-Api-Key: key`.
    pub fn require_api_key(&self, key: &str) {
        lock(&self.books).api_key = Some(key.to_string());
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.books).requests.clone()
    }

    pub fn cards(&self) -> Vec<Card> {
        lock(&self.books).cards.clone()
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        lock(&self.books).subscriptions.clone()
    }
}

/// Never returns while the stand-in hangs.
async fn hang_if_asked(books: &Shared) {
    let hang = lock(books).hang;
    if hang {
        std::future::pending::<()>().await;
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string)
}

fn message(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({ "message": message }))
}

/// Records the request, answers a refusal or an injected failure, or runs
/// `handle` on the books with the request's idempotency key and body.
fn serve(
    books: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    handle: impl FnOnce(&mut Books, &str, &Value) -> (StatusCode, Value),
) -> Response {
    let mut books = lock(books);
    let idempotency_key = header(headers, "idempotency-key");
    let api_key = header(headers, "x-api-key");
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (status, answer) = if books.api_key.is_some() && books.api_key != api_key {
        message(StatusCode::UNAUTHORIZED, "X-Api-Key is missing or wrong")
    } else if let Some(status) = books.fail_with {
        message(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), INJECTED_FAILURE)
    } else if let Some(key) = idempotency_key.as_deref().filter(|key| !key.is_empty()) {
        handle(&mut books, key, &json)
    } else {
        message(StatusCode::BAD_REQUEST, "Idempotency-Key is required")
    };
    books.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        idempotency_key,
        api_key,
        body: json,
        status: status.as_u16(),
    });
    (status, Json(answer)).into_response()
}

#[derive(Deserialize)]
struct Amount {
    minor_units: i64,
    currency: String,
}

#[derive(Deserialize)]
struct CardRequest {
    amount: Amount,
    recipient_email: String,
}

fn card_json(card: &Card) -> Value {
    json!({
        "code": card.code,
        "amount": {"minor_units": card.minor_units, "currency": card.currency},
        "recipient_email": card.recipient_email,
        "status": if card.cancelled { "cancelled" } else { "active" },
    })
}

async fn issue_card(State(books): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    hang_if_asked(&books).await;
    serve(&books, &method, &uri, &headers, &body, |books, key, json| {
        if let Some(&index) = books.card_keys.get(key) {
            return (StatusCode::OK, card_json(&books.cards[index]));
        }
        let Ok(request) = serde_json::from_value::<CardRequest>(json.clone()) else {
            return message(StatusCode::BAD_REQUEST, "expected {amount: {minor_units, currency}, recipient_email}");
        };
        if request.amount.minor_units <= 0 {
            return message(StatusCode::BAD_REQUEST, "amount must be positive");
        }
        let card = Card {
            code: format!("GC-{:06}", books.cards.len() + 1),
            minor_units: request.amount.minor_units,
            currency: request.amount.currency,
            recipient_email: request.recipient_email,
            cancelled: false,
        };
        let answer = card_json(&card);
        books.card_keys.insert(key.to_string(), books.cards.len());
        books.cards.push(card);
        (StatusCode::CREATED, answer)
    })
}

async fn cancel_card(
    State(books): State<Shared>,
    Path(code): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    hang_if_asked(&books).await;
    serve(&books, &method, &uri, &headers, &body, |books, _key, _json| {
        match books.cards.iter_mut().find(|card| card.code == code) {
            Some(card) => {
                card.cancelled = true;
                (StatusCode::OK, card_json(card))
            }
            None => message(StatusCode::NOT_FOUND, &format!("no card {code}")),
        }
    })
}

#[derive(Deserialize)]
struct Subscriber {
    email: String,
}

#[derive(Deserialize)]
struct SubscriptionRequest {
    plan: String,
    months: u32,
    subscriber: Subscriber,
    billing_country: Option<String>,
}

fn subscription_json(subscription: &Subscription) -> Value {
    json!({
        "id": subscription.id,
        "plan": subscription.plan,
        "months": subscription.months,
        "status": if subscription.cancelled { "cancelled" } else { "active" },
    })
}

async fn grant_subscription(State(books): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    hang_if_asked(&books).await;
    serve(&books, &method, &uri, &headers, &body, |books, key, json| {
        if let Some(&index) = books.subscription_keys.get(key) {
            return (StatusCode::OK, subscription_json(&books.subscriptions[index]));
        }
        let Ok(request) = serde_json::from_value::<SubscriptionRequest>(json.clone()) else {
            return message(StatusCode::BAD_REQUEST, "expected {plan, months, subscriber: {username, email}}");
        };
        let subscription = Subscription {
            id: format!("sub-{}", books.subscriptions.len() + 1),
            plan: request.plan,
            months: request.months,
            email: request.subscriber.email,
            billing_country: request.billing_country,
            cancelled: false,
        };
        let answer = subscription_json(&subscription);
        books.subscription_keys.insert(key.to_string(), books.subscriptions.len());
        books.subscriptions.push(subscription);
        (StatusCode::CREATED, answer)
    })
}

async fn cancel_subscription(
    State(books): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    hang_if_asked(&books).await;
    serve(&books, &method, &uri, &headers, &body, |books, _key, _json| {
        match books.subscriptions.iter_mut().find(|subscription| subscription.id == id) {
            Some(subscription) => {
                subscription.cancelled = true;
                (StatusCode::OK, subscription_json(subscription))
            }
            None => message(StatusCode::NOT_FOUND, &format!("no subscription {id}")),
        }
    })
}
