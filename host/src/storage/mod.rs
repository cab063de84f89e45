//! Storage: orders, lines, notes, payments, refunds, the attempt log and the
//! dashboard's sessions in
//! SQLite (the embedded default) or PostgreSQL, through one set of queries.
//!
//! Start at [`Database::connect`]: it picks the backend from the URL, applies
//! the migrations in `host/migrations/{sqlite,postgres}` (the same tables and
//! columns), and hands out connections. The query functions, one file per
//! table group, take a `&mut AnyConnection`, so the caller decides what runs
//! in one transaction.

mod checkouts;
mod error;
mod jobs;
mod orders;
mod payments;
mod products;
mod refunds;
mod sessions;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use writer::GroupWriter;

use crate::settings::SqliteSynchronous;

pub use checkouts::{
    CheckoutRecord, CheckoutState, NewCheckout, checkout_by_key, hold_pending_checkout, insert_checkout, load_checkout,
    mark_checkout_ordered, mark_checkout_unpaid, reopen_abandoned_checkout,
};
pub use error::StorageError;
pub use writer::WriteTransaction;
pub use jobs::{
    ClaimedJob, JobKind, JobRecord, JobState, JobUpdate, NewJob, any_job_due, claim_due_job, complete_job_of, count_jobs, finish_job,
    insert_job, job_of, jobs_of, lease_job, make_job_due_now, postpone_job, release_lease, release_leases_of, renew_lease,
};
pub use orders::{
    AttemptLog, AttemptRecord, OrderFilter, attempts_of_order, OrderPage, OrderScope, StoredOrder, hold_order, insert_order, list_orders, load_order, next_order_number,
    save_fulfillment, save_notes,
};
pub use payments::{
    PaymentEventRecord, PaymentRecord, SourceState, insert_payment_event, payment_events, insert_payment_source, payment_for_order, payments_by_ids,
    set_payment_reference, set_payment_state,
};
pub use products::{CatalogProduct, get_products, list_products, upsert_product};
pub use sessions::{SessionRecord, delete_expired_sessions, delete_session, insert_session, live_session};
pub use refunds::{
    CreditState, RefundLineRecord, RefundPage, RefundRecord, credits_taken, hold_refund, insert_refund, line_in_refund,
    load_refund, refunds_of_order, update_refund,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The database's clock in unix milliseconds, as an SQL expression:
    /// leases and due times are compared on one clock, whichever host
    /// writes them.
    pub fn now_ms(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }
}

/// A pool of connections to the orders database, migrated.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the one connection this process writes through; its writers
    /// take turns for it (SQLite runs one write transaction at a time
    /// anyway) and share commits (storage/writer.rs). One connection keeps
    /// its page cache warm from one write to the next: when every connection
    /// of the pool wrote in turn, each found its cache stale
    /// (docs/performance.md).
    writer: Option<GroupWriter>,
}

impl Database {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating a
    /// SQLite file if it does not exist, and applies the migrations.
    /// On SQLite, `synchronous` says when a commit returns (the settings'
    /// `[database] sqlite_synchronous`).
    pub async fn connect(url: &str, max_connections: u32, synchronous: SqliteSynchronous) -> Result<Database, StorageError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') && !url.contains(":memory:") => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(StorageError::connect(&url))?;
        let pool_options = || {
            AnyPoolOptions::new()
                .acquire_timeout(Duration::from_secs(10))
                // A SQLite file does not go away under its connections: a
                // ping before every acquire would only be one more round
                // trip to the connection's thread.
                .test_before_acquire(backend == Backend::Postgres)
                .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer; a writer
                        // waits up to 5 s for another instead of failing.
                        connection.execute("PRAGMA journal_mode = WAL").await?;
                        connection.execute("PRAGMA busy_timeout = 5000").await?;
                        connection.execute("PRAGMA foreign_keys = ON").await?;
                        connection.execute(synchronous.pragma()).await?;
                    }
                    Ok(())
                })
            })
        };
        let pool = pool_options()
            .max_connections(max_connections)
            .connect_with(options.clone())
            .await
            .map_err(StorageError::connect(&url))?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        let writer = match backend {
            Backend::Sqlite => {
                // A connection of its own, with the pool's pragmas.
                let connection = pool_options()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .map_err(StorageError::connect(&url))?
                    .acquire()
                    .await
                    .map_err(StorageError::connect(&url))?
                    .detach();
                Some(GroupWriter::new(connection))
            }
            Backend::Postgres => None,
        };
        Ok(Database { pool, backend, writer })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a read-only transaction whose reads all see one snapshot of
    /// the database (an order with its payment and its job, as they stood
    /// together).
    pub async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            // WAL: a deferred transaction reads one snapshot from its first read.
            Backend::Sqlite => self.pool.begin().await,
            Backend::Postgres => self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await,
        }
    }

    /// Begins a transaction that will write. On SQLite it waits its turn
    /// for the writer connection among this process's writers (in order, at
    /// most 10 s), and becomes a unit of the open group of transactions that
    /// commit together (storage/writer.rs); a group takes SQLite's write
    /// lock at once (`BEGIN IMMEDIATE`, waiting up to the busy time-out for
    /// other processes): a transaction that read first and then tried to
    /// write would fail at once if another wrote meanwhile.
    ///
    /// What it reads may include the work of earlier transactions of its
    /// group that are not yet on disk: a transaction that calls out (moves
    /// money) on what it read uses [`Database::begin_write_settled`].
    pub async fn begin_write(&self) -> Result<WriteTransaction, sqlx::Error> {
        self.begin_writing(false).await
    }

    /// [`Database::begin_write`] for a transaction that calls out on what
    /// it read: on SQLite, the open group commits first, so everything it
    /// reads is durable.
    pub async fn begin_write_settled(&self) -> Result<WriteTransaction, sqlx::Error> {
        self.begin_writing(true).await
    }

    /// A unit of SQLite's writer (settled or not), or a transaction of the
    /// pool (PostgreSQL, whose reads see only committed work).
    async fn begin_writing(&self, settled: bool) -> Result<WriteTransaction, sqlx::Error> {
        match &self.writer {
            Some(writer) => writer.begin(settled).await,
            None => Ok(WriteTransaction::pooled(self.pool.begin().await?)),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// `$first, $first+1, ...` for `count` bound values (an `IN (...)` list).
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|index| format!("${index}")).collect::<Vec<_>>().join(", ")
}

/// Milliseconds since the Unix epoch, for `created_at` columns.
pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::SQLITE_MIGRATIONS;

    /// A database made before migration 0003 keeps replaying its keys and
    /// gets a job for every order: a key that was declined and then paid
    /// (two payment sources with the same key) gives one checkout, of the
    /// paid source; an order left Open by a dropped request is queued.
    #[tokio::test]
    async fn migration_3_keeps_the_keys_and_queues_open_orders() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let mut connection = sqlx::AnyConnection::connect(&url).await.expect("connect");
        let [first, second, third] = [1, 2, 3].map(|version| {
            SQLITE_MIGRATIONS.iter().find(|migration| migration.version == version).expect("migration")
        });
        for migration in [first, second] {
            sqlx::raw_sql(&migration.sql).execute(&mut connection).await.expect("old migration");
        }
        sqlx::raw_sql(
            "INSERT INTO payment_sources (id, processor, reference, amount_minor, currency, idempotency_key, created_at)
                 VALUES (1, 'test', 'pending', 5900, 'USD', 'k-1', 0), (2, 'test', 'test_ch_1', 5900, 'USD', 'k-1', 0),
                        (3, 'test', 'test_ch_2', 1000, 'USD', NULL, 0);
             INSERT INTO orders (id, number, username, email, date_placed, currency, total_minor, shipping_method,
                     shipping_minor, billing_address, email_opt_in, basket_attributes, status, payment_source_id, created_at)
                 VALUES (1, 'EDX-1', 'a', 'a@example.com', '2026-01-01T00:00:00Z', 'USD', 5900, 'x', 0, '{}', 0, '{}',
                         'Complete', 2, 0),
                        (2, 'EDX-2', 'b', 'b@example.com', '2026-01-01T00:00:00Z', 'USD', 1000, 'x', 0, '{}', 0, '{}',
                         'Open', 3, 0);
             INSERT INTO idempotency_keys (key, request_hash, order_number, created_at) VALUES ('k-1', 'h', 'EDX-1', 0);",
        )
        .execute(&mut connection)
        .await
        .expect("old rows");
        sqlx::raw_sql(&third.sql).execute(&mut connection).await.expect("migration 3 applies");

        let checkouts: Vec<(String, i64, String, Option<String>)> =
            sqlx::query_as("SELECT idempotency_key, payment_source_id, state, order_number FROM checkouts")
                .fetch_all(&mut connection)
                .await
                .expect("checkouts");
        assert_eq!(checkouts, [("k-1".to_string(), 2, "ordered".to_string(), Some("EDX-1".to_string()))]);
        let jobs: Vec<(String, i64, String)> = sqlx::query_as("SELECT kind, subject_id, state FROM jobs ORDER BY subject_id")
            .fetch_all(&mut connection)
            .await
            .expect("jobs");
        assert_eq!(
            jobs,
            [("fulfill".to_string(), 1, "done".to_string()), ("fulfill".to_string(), 2, "queued".to_string())]
        );
    }

    /// Migration 0004: existing orders and checkouts have no known placer
    /// (NULL); each payment source takes its checkout's state (refused for a
    /// declined one), and sources older than checkouts are paid.
    #[tokio::test]
    async fn migration_4_leaves_placers_unknown_and_states_sources() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let mut connection = sqlx::AnyConnection::connect(&url).await.expect("connect");
        let migrations: Vec<_> = SQLITE_MIGRATIONS.iter().filter(|migration| migration.version <= 4).collect();
        for migration in &migrations[..3] {
            sqlx::raw_sql(&migration.sql).execute(&mut connection).await.expect("old migration");
        }
        sqlx::raw_sql(
            "INSERT INTO payment_sources (id, processor, reference, amount_minor, currency, created_at)
                 VALUES (1, 'test', 'test_ch_1', 5900, 'USD', 0), (2, 'test', 'pending', 5900, 'USD', 0),
                        (3, 'test', 'pending', 5900, 'USD', 0), (4, 'test', 'pending', 5900, 'USD', 0),
                        (5, 'test', 'test_ch_2', 5900, 'USD', 0);
             INSERT INTO checkouts (id, request_hash, request, processor, amount_minor, currency, payment_source_id,
                     state, created_at, updated_at)
                 VALUES (1, 'h', '{}', 'test', 5900, 'USD', 1, 'ordered', 0, 0),
                        (2, 'h', '{}', 'test', 5900, 'USD', 2, 'declined', 0, 0),
                        (3, 'h', '{}', 'test', 5900, 'USD', 3, 'abandoned', 0, 0),
                        (4, 'h', '{}', 'test', 5900, 'USD', 4, 'pending', 0, 0);
             INSERT INTO orders (id, number, username, email, date_placed, currency, total_minor, shipping_method,
                     shipping_minor, billing_address, email_opt_in, basket_attributes, status, payment_source_id, created_at)
                 VALUES (1, 'EDX-1', 'a', 'a@example.com', '2026-01-01T00:00:00Z', 'USD', 5900, 'x', 0, '{}', 0, '{}',
                         'Complete', 1, 0);",
        )
        .execute(&mut connection)
        .await
        .expect("old rows");
        assert_eq!(migrations[3].version, 4);
        sqlx::raw_sql(&migrations[3].sql).execute(&mut connection).await.expect("migration 4 applies");

        let states: Vec<String> = sqlx::query_scalar("SELECT state FROM payment_sources ORDER BY id")
            .fetch_all(&mut connection)
            .await
            .expect("sources");
        assert_eq!(states, ["paid", "refused", "abandoned", "pending", "paid"]);
        let placers: Vec<Option<String>> =
            sqlx::query_scalar("SELECT placed_by FROM orders UNION ALL SELECT placed_by FROM checkouts")
                .fetch_all(&mut connection)
                .await
                .expect("placers");
        assert_eq!(placers, vec![None; 5]);
    }

    /// `[database] sqlite_synchronous` reaches every connection of the pool
    /// (SQLite's own default is FULL; NORMAL is 1).
    #[tokio::test]
    async fn the_sqlite_synchronous_setting_reaches_every_connection() {
        for (setting, expected) in [(super::SqliteSynchronous::Full, 2), (super::SqliteSynchronous::Normal, 1)] {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("sync.db").display());
            let database = super::Database::connect(&url, 2, setting).await.expect("connect");
            let mut first = database.pool().acquire().await.expect("a connection");
            let mut second = database.pool().acquire().await.expect("a second connection");
            for connection in [&mut first, &mut second] {
                let value: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **connection).await.expect("pragma");
                assert_eq!(value, expected, "{setting:?}");
            }
        }
    }
}
