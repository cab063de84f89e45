//! The harness of the HTTP API tests: a real server on a loopback port
//! with a SQLite file or a PostgreSQL schema of its own, the shipped
//! modules and the LMS stand-in; and the macro that runs a scenario on both
//! databases. The PostgreSQL runs need `FULFILLMENT_TEST_POSTGRES_URL`
//! (scripts/test sets it) and say so when they are skipped.

use fulfillment_host::app::Application;
use fulfillment_host::payments::Payments;
use fulfillment_host::services::Services;
use fulfillment_tests::lms::LmsStandIn;
use fulfillment_tests::postgres;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{self, API_KEY};

pub(crate) const ADMIN_TOKEN: &str = "admin-token";
pub(crate) const CHECKOUT_TOKEN: &str = "checkout-token";
pub(crate) const COURSE: &str = "course-v1:edX+DemoX+Demo";
/// Which database a test runs on.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite,
    /// A fresh schema of the database at this URL.
    Postgres(String),
}

impl Db {
    /// PostgreSQL, when the test database is configured.
    pub(crate) fn postgres() -> Option<Db> {
        postgres::postgres_url().map(Db::Postgres)
    }
}

/// A running host and what it talks to.
pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) database_url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) lms: LmsStandIn,
    pub(crate) payments: Payments,
    /// The host's services, for the tests that run a due job themselves
    /// (`services.executor.run_one_due_job()`) instead of waiting for a worker.
    pub(crate) services: Services,
    _dir: tempfile::TempDir,
}

/// A database URL of its own for one test.
pub(crate) async fn database_url(db: &Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("orders.db").display()),
        Db::Postgres(url) => postgres::fresh_schema(url).await,
    }
}

pub(crate) fn digest(token: &str) -> String {
    fulfillment_host::api::token_digest(token)
}

/// The settings of a test host: the shipped modules calling the LMS at
/// `lms_url` (and a missing module, disabled), the database at
/// `database_url`, the two tokens, the seat-and-donation catalog, and
/// `extra_toml` (a `[server]` or `[orders]` section in it replaces the
/// harness's own).
pub(crate) fn host_toml(lms_url: &str, database_url: &str, max_connections: u32, extra_toml: &str) -> String {
    format!(
        r#"{modules}
# A module whose file is missing, left out visibly instead of stopping the host.
[[modules]]
name = "broken"
path = "/nonexistent/broken.wasm"
on_load_failure = "disable"

{server}
[database]
url = "{database_url}"
max_connections = {max_connections}
{orders}
[[api.tokens]]
name = "admin"
sha256 = "{admin}"
role = "admin"
[[api.tokens]]
name = "storefront"
sha256 = "{checkout}"
role = "checkout"
{products}
{extra_toml}
"#,
        modules = support::shipped_modules(lms_url),
        // Small, so that a whole refused request fits in the server's
        // first read: nothing is left unread when it answers 413.
        server = if extra_toml.contains("[server]") {
            ""
        } else {
            "[server]\nbind = \"127.0.0.1:0\"\nbody_limit_bytes = 2048"
        },
        orders = if extra_toml.contains("[orders]") {
            ""
        } else {
            "[orders]\nnumber_prefix = \"EDX\"\nfirst_number = 100001"
        },
        products = fulfillment_tests::catalog::seat_and_donation(COURSE),
        admin = digest(ADMIN_TOKEN),
        checkout = digest(CHECKOUT_TOKEN),
    )
}

impl TestApp {
    pub(crate) async fn spawn(db: Db) -> TestApp {
        TestApp::spawn_with(db, "").await
    }

    /// The same with more TOML sections (`[fulfillment]`, say); a
    /// `[server]` or `[orders]` section replaces the harness's own.
    pub(crate) async fn spawn_with(db: Db, extra_toml: &str) -> TestApp {
        TestApp::spawn_with_pool(db, extra_toml, 4).await
    }

    /// The same with a pool of `max_connections`.
    pub(crate) async fn spawn_with_pool(db: Db, extra_toml: &str, max_connections: u32) -> TestApp {
        let lms = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_url(&db, dir.path()).await;
        let toml = host_toml(&lms.url(), &url, max_connections, extra_toml);
        let settings = support::settings(&toml);
        let app = Application::build_with(&settings, support::engine()).await.expect("the app builds");
        let base = format!("http://{}/api/v1", app.local_addr().expect("bound"));
        let services = app.state().services.clone();
        let payments = services.payments.clone();
        tokio::spawn(app.run_until(std::future::pending()));
        TestApp {
            base,
            database_url: url,
            http: reqwest::Client::new(),
            lms,
            payments,
            services,
            _dir: dir,
        }
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> (StatusCode, Value) {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("the host answers");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub(crate) async fn place(&self, body: &Value, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/orders", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request, Some(CHECKOUT_TOKEN)).await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)), Some(token)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Option<Value>, token: &str) -> (StatusCode, Value) {
        let mut request = self.http.put(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, Some(token)).await
    }

    pub(crate) async fn order_count(&self) -> u64 {
        let (_, list) = self.get("/orders", ADMIN_TOKEN).await;
        list["count"].as_u64().expect("a count")
    }

    /// Takes the LMS down (its port refuses connections).
    pub(crate) async fn lms_down(&mut self) -> std::net::SocketAddr {
        let placeholder = LmsStandIn::start(API_KEY).await.expect("LMS stand-in starts");
        std::mem::replace(&mut self.lms, placeholder).stop().await
    }

    /// Brings the LMS back on its address.
    pub(crate) async fn lms_up(&mut self, address: std::net::SocketAddr) {
        self.lms = LmsStandIn::start_on(address, API_KEY).await.expect("LMS stand-in restarts");
    }

    /// Runs the jobs that are due now, here, until none is left.
    pub(crate) async fn run_due_jobs(&self) {
        while self.services.executor.run_one_due_job().await.expect("the queue answers") {}
    }

    /// Order `number` once its fulfillment job has settled (not queued, or
    /// not running and not due), running due jobs meanwhile; fails after 20 s.
    /// Places a Complete seat-and-donation order (EDX-100001) and opens a
    /// refund of its seat; the refund's id.
    pub(crate) async fn refund_of_the_seat(&self) -> i64 {
        let (status, order) = self.place(&checkout("59.00", "tok_success"), None).await;
        // Complete at once, or (on a host with a short wait, under load) soon.
        assert!(matches!(status, StatusCode::CREATED | StatusCode::ACCEPTED), "{status}: {order}");
        let order = self.settled_order("EDX-100001").await;
        assert_eq!(order["status"], "Complete", "{order}");
        let refund = json!({"order_number": "EDX-100001", "line_ids": [1]});
        let (status, created) = self
            .send(self.http.post(format!("{}/refunds", self.base)).json(&refund), Some(ADMIN_TOKEN))
            .await;
        assert_eq!((status, &created["status"]), (StatusCode::CREATED, &json!("Open")), "{created}");
        created["id"].as_i64().expect("an id")
    }

    /// Refund `id` once its job has settled (Complete, Revocation Error,
    /// Payment Refund Error or Denied), running due jobs meanwhile; fails
    /// after 20 s.
    pub(crate) async fn settled_refund(&self, id: i64) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            self.run_due_jobs().await;
            let (_, refund) = self.get(&format!("/refunds/{id}"), ADMIN_TOKEN).await;
            if matches!(
                refund["status"].as_str(),
                Some("Complete" | "Revocation Error" | "Payment Refund Error" | "Denied")
            ) {
                return refund;
            }
            assert!(std::time::Instant::now() < deadline, "refund {id} did not settle: {refund}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn settled_order(&self, number: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            self.run_due_jobs().await;
            let (_, order) = self.get(&format!("/orders/{number}"), ADMIN_TOKEN).await;
            let job = &order["fulfillment_job"];
            if job["state"] != "queued" && job["running"] == false {
                return order;
            }
            assert!(std::time::Instant::now() < deadline, "order {number} did not settle: {order}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The test processor's charges whose checkout did not become an
    /// order, once no checkout is left to complete (running the due jobs
    /// meanwhile; fails after 20 s): must be none. It asks the processor,
    /// not our own records.
    pub(crate) async fn charges_without_order(&self) -> Vec<String> {
        let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(&self.database_url).await.expect("connect");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            self.run_due_jobs().await;
            let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'checkout' AND state = 'queued'")
                .fetch_one(&mut connection)
                .await
                .expect("count checkout jobs");
            if left == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{left} checkouts were never completed");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mut stranded = Vec::new();
        for charge in self.payments.ledger().iter().filter(|entry| entry.reference.starts_with("test_ch_")) {
            let id: i64 = charge.key.trim_start_matches("checkout-").parse().expect("a checkout's charge key");
            let ordered: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM checkouts JOIN orders ON orders.number = checkouts.order_number
                 WHERE checkouts.id = $1 AND checkouts.state = 'ordered' AND orders.payment_source_id = checkouts.payment_source_id",
            )
            .bind(id)
            .fetch_one(&mut connection)
            .await
            .expect("the charge's checkout");
            if ordered != 1 {
                stranded.push(charge.reference.clone());
            }
        }
        stranded
    }

    pub(crate) fn charges(&self) -> usize {
        self.payments.ledger().iter().filter(|entry| entry.signed_minor_units > 0).count()
    }
}

pub(crate) fn checkout(total: &str, token: &str) -> Value {
    json!({
        "user": {"username": "alice", "email": "alice@example.com"},
        "basket": [{"sku": "SEAT", "quantity": 1}, {"sku": "DONATION", "quantity": 1}],
        "billing_address": {"country": "US"},
        "total": total,
        "currency": "USD",
        "payment": {"processor": "test", "token": token},
    })
}

/// The billing address the edX storefront sends (its eight fields).
pub(crate) fn edx_billing_address() -> Value {
    json!({
        "first_name": "Alice", "last_name": "Smith", "line1": "1 Main St", "line2": "Apt 2",
        "city": "Cambridge", "state": "MA", "postcode": "02139", "country": "US",
    })
}

/// A shipping address with every field of the record.
pub(crate) fn full_shipping_address() -> Value {
    json!({
        "first_name": "Bob", "last_name": "Jones", "line1": "10 Downing St", "line2": "",
        "city": "London", "state": "Greater London", "postcode": "SW1A 2AA", "country": "GB",
        "phone_number": "+44 20 7925 0918",
    })
}

/// `body` (a checkout) with both addresses and a shipping method and
/// charge of 5.00 (added to its total).
pub(crate) fn shipped(mut body: Value) -> Value {
    let cents: i64 = body["total"].as_str().and_then(|total| total.replace('.', "").parse().ok()).expect("a USD total");
    let cents = cents + 500;
    body["total"] = json!(format!("{}.{:02}", cents / 100, cents % 100));
    body["shipping_method"] = json!("ups-ground");
    body["shipping_charge"] = json!("5.00");
    body["billing_address"] = edx_billing_address();
    body["shipping_address"] = full_shipping_address();
    body
}

pub(crate) fn statuses(order: &Value) -> Vec<String> {
    order["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| line["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs a scenario on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        $(mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(no_postgres, ignore = "needs FULFILLMENT_TEST_POSTGRES_URL (scripts/test sets it)")]
            async fn postgres() {
                super::$scenario(super::Db::postgres().expect("FULFILLMENT_TEST_POSTGRES_URL is set")).await;
            }
        })*
    };
}

