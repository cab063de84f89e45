//! A PostgreSQL schema of its own for each test that needs one, on the
//! database named by `FULFILLMENT_TEST_POSTGRES_URL` (scripts/test sets it).

use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that names the test database.
pub const POSTGRES_URL_VARIABLE: &str = "FULFILLMENT_TEST_POSTGRES_URL";

static SCHEMA: AtomicU64 = AtomicU64::new(0);
static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// The test database's URL, or None after saying on stderr that the test
/// is skipped (so a run without PostgreSQL says what it did not test).
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: the PostgreSQL run of this test needs {POSTGRES_URL_VARIABLE} (scripts/test sets it)");
            None
        }
    }
}

/// A URL of `url` whose connections use a fresh schema
/// (`fh_test_<pid>_<n>`); the schemas of test processes that are gone are
/// dropped first.
pub async fn fresh_schema(url: &str) -> String {
    let schema = format!("fh_test_{}_{}", std::process::id(), SCHEMA.fetch_add(1, Ordering::SeqCst));
    sqlx::any::install_default_drivers();
    let mut connection: sqlx::AnyConnection = sqlx::Connection::connect(url).await.expect("connect to PostgreSQL");
    CLEANED.get_or_init(|| drop_schemas_of_finished_runs(&mut connection)).await;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut connection)
        .await
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Drops the schemas that earlier test processes (no longer running) made.
async fn drop_schemas_of_finished_runs(connection: &mut sqlx::AnyConnection) {
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'fh_test_%'")
            .fetch_all(&mut *connection)
            .await
            .unwrap_or_default();
    for schema in schemas {
        let pid = schema.split('_').nth(2).unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut *connection).await;
        }
    }
}
