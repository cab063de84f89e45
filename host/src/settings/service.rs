//! The service's sections: `[server]`, `[database]`, `[orders]`, `[api]`
//! and `[[products]]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};

use serde::Deserialize;

use super::Sha256Digest;

/// `[server]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Where `serve` listens.
    pub bind: SocketAddr,
    /// The longest a request may take before the host answers 503.
    pub request_timeout_ms: u64,
    /// The largest request body accepted (413 above).
    pub body_limit_bytes: usize,
    /// How long a connection may take to send a request's head, or stay
    /// idle between requests, before the host closes it.
    pub header_read_timeout_ms: NonZeroU64,
    /// The longest wait for the next piece of a request's body (408 after).
    pub body_read_timeout_ms: NonZeroU64,
    /// The longest request target, path and query (414 above).
    pub max_uri_bytes: NonZeroUsize,
    /// The most bytes of request headers (431 above).
    pub max_header_bytes: NonZeroUsize,
    /// The most request headers (431 above).
    pub max_headers: NonZeroUsize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: default_bind(),
            request_timeout_ms: default_request_timeout_ms(),
            body_limit_bytes: default_body_limit_bytes(),
            header_read_timeout_ms: READ_TIMEOUT_MS,
            body_read_timeout_ms: READ_TIMEOUT_MS,
            max_uri_bytes: MAX_URI_BYTES,
            max_header_bytes: MAX_HEADER_BYTES,
            max_headers: MAX_HEADERS,
        }
    }
}

/// 10 s: a client on a slow link sends a head or the next piece of a body
/// well within it; a connection that sends nothing is let go soon.
const READ_TIMEOUT_MS: NonZeroU64 = NonZeroU64::new(10_000).expect("not zero");

/// 8 KiB: a path with an order number and a query of filters, many times
/// over (the limit of most proxies).
const MAX_URI_BYTES: NonZeroUsize = NonZeroUsize::new(8 * 1024).expect("not zero");

/// 16 KiB of headers: a bearer token, an idempotency key and what proxies
/// add, many times over.
const MAX_HEADER_BYTES: NonZeroUsize = NonZeroUsize::new(16 * 1024).expect("not zero");

/// 64 headers: browsers and proxies send a few dozen at most.
const MAX_HEADERS: NonZeroUsize = NonZeroUsize::new(64).expect("not zero");

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// 30 s: room for a synchronous fulfillment whose modules each wait their
/// 7 s HTTP time-out.
fn default_request_timeout_ms() -> u64 {
    30_000
}

/// 256 KiB: a basket of hundreds of lines.
fn default_body_limit_bytes() -> usize {
    256 * 1024
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (relative to the settings file; created if missing)
    /// or `postgres://user@host:port/db`.
    pub url: String,
    /// The most connections in the pool.
    pub max_connections: u32,
    /// SQLite only: when a commit waits for the disk (docs/configuration.md).
    pub sqlite_synchronous: SqliteSynchronous,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: default_database_url(),
            max_connections: default_max_connections(),
            sqlite_synchronous: SqliteSynchronous::default(),
        }
    }
}

/// `[database] sqlite_synchronous`: SQLite's `PRAGMA synchronous` (the
/// database is in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Every commit is on the disk before it returns (SQLite's default):
    /// neither a crash of the process nor a power loss undoes a committed
    /// checkout, charge or order.
    #[default]
    Full,
    /// A commit returns once it is in the write-ahead log, which is synced
    /// at checkpoints only: a crash of the process loses nothing, but a
    /// power loss or an OS crash may undo the last commits (a recorded
    /// charge among them: a payment the host no longer knows of). Several
    /// times fewer fsyncs per order (docs/performance.md).
    Normal,
}

impl SqliteSynchronous {
    /// The statement that sets it on a connection.
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "PRAGMA synchronous = FULL",
            SqliteSynchronous::Normal => "PRAGMA synchronous = NORMAL",
        }
    }
}

fn default_database_url() -> String {
    "sqlite://fulfillment.db".to_string()
}

fn default_max_connections() -> u32 {
    8
}

/// `[orders]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderSettings {
    /// Order numbers are `PREFIX-N`: "EDX-100001".
    pub number_prefix: String,
    /// N of the first order.
    pub first_number: u64,
    /// How long a checkout is left to the request that records it before
    /// the host completes it from its record (makes the order if the
    /// payment went through, abandons it if not): the request died, or its
    /// database failed after the charge.
    pub checkout_grace_ms: u64,
}

impl Default for OrderSettings {
    fn default() -> Self {
        OrderSettings {
            number_prefix: default_number_prefix(),
            first_number: default_first_number(),
            checkout_grace_ms: 30_000,
        }
    }
}

fn default_number_prefix() -> String {
    "EDX".to_string()
}

/// As edX: basket id + 100000.
fn default_first_number() -> u64 {
    100_001
}

/// `[payments]`: the built-in processors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentSettings {
    /// Where the `test` processor keeps its ledger (JSON lines, relative to
    /// the settings file), so that it survives a restart and is shared by
    /// every host that names it, as a real processor's records are. In
    /// memory when unset.
    pub test_ledger: Option<std::path::PathBuf>,
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Who may call the API; each name once (it records who placed an order).
    #[serde(default, deserialize_with = "unique_token_names")]
    pub tokens: Vec<TokenSettings>,
}

/// `[[api.tokens]]` whose names are unique and not empty: an `own` token
/// sees the orders its name placed, so two tokens must not share one.
fn unique_token_names<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<TokenSettings>, D::Error> {
    let tokens = Vec::<TokenSettings>::deserialize(deserializer)?;
    for (index, token) in tokens.iter().enumerate() {
        if token.name.trim().is_empty() {
            return Err(serde::de::Error::custom(format!("[[api.tokens]] entry {}: `name` must not be empty", index + 1)));
        }
        if token.user.as_deref().is_some_and(|user| user.trim().is_empty()) {
            return Err(serde::de::Error::custom(format!(
                "[[api.tokens]] `{}`: `user` must not be empty (leave it out for every user)",
                token.name
            )));
        }
        if let Some(first) = tokens[..index].iter().position(|earlier| earlier.name == token.name) {
            return Err(serde::de::Error::custom(format!(
                "[[api.tokens]] entries {} and {} are both named `{}`: each token needs a name of its own \
                 (it records who placed an order)",
                first + 1,
                index + 1,
                token.name
            )));
        }
    }
    Ok(tokens)
}

/// One `[[api.tokens]]`: a bearer token, stored as its SHA-256 only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Who holds it (in logs); recorded on each order it places.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: Sha256Digest,
    pub role: Role,
    /// Which orders it may read: `all`, or `own` (the orders placed with a
    /// token of this name). Default: `own` for `checkout`, `all` for `admin`.
    #[serde(default)]
    pub orders: Option<OrderAccess>,
    /// Only this user's orders (`user.username`): it reads no others and
    /// places orders for this user only. Default: any user.
    #[serde(default)]
    pub user: Option<String>,
}

impl TokenSettings {
    /// `orders`, or the role's default.
    pub fn order_access(&self) -> OrderAccess {
        self.orders.unwrap_or(match self.role {
            Role::Checkout => OrderAccess::Own,
            Role::Admin => OrderAccess::All,
        })
    }
}

/// Which orders a token may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderAccess {
    /// Every order, also those placed before placers were recorded.
    All,
    /// The orders placed with a token of its name.
    Own,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Place orders and read them.
    Checkout,
    /// Everything.
    Admin,
}

/// One `[[products]]` entry of the demo or seed catalog (upserted at start),
/// and the body of `POST /api/v1/products`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductSettings {
    pub sku: String,
    /// "Seat", "Coupon", "Enrollment Code", "Course Entitlement", "Donation",
    /// or any other type a module claims.
    pub product_type: String,
    pub title: String,
    /// A decimal string in `currency`: "49.00".
    #[schema(pattern = r"^[0-9]+(\.[0-9]+)?$", example = "49.00")]
    pub price: String,
    #[schema(value_type = crate::model::Currency)]
    pub currency: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::settings::Settings;

    const DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(tokens: &str) -> Result<Settings, String> {
        Settings::parse(tokens, std::path::Path::new("/test/settings.toml")).map_err(|error| format!("{error:?}"))
    }

    fn token(name: &str, role: &str, more: &str) -> String {
        format!("[[api.tokens]]\nname = \"{name}\"\nsha256 = \"{DIGEST}\"\nrole = \"{role}\"\n{more}\n")
    }

    #[test]
    fn checkout_tokens_see_their_own_orders_unless_told_otherwise() {
        let text = [
            token("shop", "checkout", ""),
            token("staff", "admin", ""),
            token("reports", "checkout", "orders = \"all\""),
            token("support", "admin", "orders = \"own\"\nuser = \"alice\""),
        ]
        .concat();
        let settings = parse(&text).expect("valid");
        let access: Vec<(OrderAccess, Option<&str>)> =
            settings.api.tokens.iter().map(|token| (token.order_access(), token.user.as_deref())).collect();
        assert_eq!(
            access,
            [(OrderAccess::Own, None), (OrderAccess::All, None), (OrderAccess::All, None), (OrderAccess::Own, Some("alice"))]
        );
    }

    #[test]
    fn two_tokens_of_one_name_are_refused_naming_both() {
        let error = parse(&[token("shop", "checkout", ""), token("staff", "admin", ""), token("shop", "admin", "")].concat())
            .expect_err("duplicate names");
        assert!(error.contains("[[api.tokens]] entries 1 and 3 are both named `shop`"), "{error}");
        let error = parse(&token("shop", "checkout", "orders = \"mine\"")).expect_err("unknown access");
        assert!(error.contains("unknown variant `mine`"), "{error}");
        let error = parse(&token("shop", "checkout", "user = \" \"")).expect_err("empty user");
        assert!(error.contains("`user` must not be empty"), "{error}");
    }

    #[test]
    fn server_limits_have_defaults_and_refuse_zero_naming_the_key() {
        let settings = Settings::parse("", Path::new("/etc/fulfillment/settings.toml")).expect("empty settings are valid");
        assert_eq!(settings.server.header_read_timeout_ms.get(), 10_000);
        assert_eq!(settings.server.max_headers.get(), 64);
        for key in ["header_read_timeout_ms", "body_read_timeout_ms", "max_uri_bytes", "max_header_bytes", "max_headers"] {
            let text = format!("[server]\n{key} = 0\n");
            let error = Settings::parse(&text, Path::new("/etc/fulfillment/settings.toml")).expect_err("0 is refused").to_string();
            assert!(error.contains("line 2") && error.contains(key) && error.contains("nonzero"), "{error}");
        }
    }

    #[test]
    fn sqlite_synchronous_is_full_unless_normal_is_asked_for_and_nothing_else_is_taken() {
        let path = Path::new("/etc/fulfillment/settings.toml");
        let default = Settings::parse("", path).expect("empty settings are valid");
        assert_eq!(default.database.sqlite_synchronous, SqliteSynchronous::Full);
        let normal = Settings::parse("[database]\nsqlite_synchronous = \"normal\"\n", path).expect("normal is valid");
        assert_eq!(normal.database.sqlite_synchronous, SqliteSynchronous::Normal);
        let error = Settings::parse("[database]\nsqlite_synchronous = \"off\"\n", path).expect_err("off is refused").to_string();
        assert!(error.contains("line 2") && error.contains("off") && error.contains("full") && error.contains("normal"), "{error}");
    }
}
