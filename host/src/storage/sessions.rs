//! The operator dashboard's sessions (migration 0005).

use sqlx::AnyConnection;

use super::StorageError;

/// A signed-in browser, as stored: only the SHA-256 of its session id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_sha256: String,
    /// The SHA-256 (hex) of the admin token it signed in with.
    pub token_sha256: String,
    pub token_name: String,
    /// The session's CSRF token: every form it posts carries it.
    pub csrf: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_session(connection: &mut AnyConnection, session: &SessionRecord) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO dashboard_sessions (id_sha256, token_sha256, token_name, csrf, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.id_sha256)
    .bind(&session.token_sha256)
    .bind(&session.token_name)
    .bind(&session.csrf)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The session whose id has the digest `id_sha256`, unless it expired by `now_ms`.
pub async fn live_session(connection: &mut AnyConnection, id_sha256: &str, now_ms: i64) -> Result<Option<SessionRecord>, StorageError> {
    Ok(sqlx::query_as::<_, SessionRecord>(
        "SELECT id_sha256, token_sha256, token_name, csrf, created_at, expires_at FROM dashboard_sessions
         WHERE id_sha256 = $1 AND expires_at > $2",
    )
    .bind(id_sha256)
    .bind(now_ms)
    .fetch_optional(&mut *connection)
    .await?)
}

pub async fn delete_session(connection: &mut AnyConnection, id_sha256: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM dashboard_sessions WHERE id_sha256 = $1")
        .bind(id_sha256)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Forgets the sessions that expired by `now_ms`; how many.
pub async fn delete_expired_sessions(connection: &mut AnyConnection, now_ms: i64) -> Result<u64, StorageError> {
    let deleted = sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(&mut *connection)
        .await?;
    Ok(deleted.rows_affected())
}
