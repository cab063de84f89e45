//! The operator dashboard's sign-ins: a session per signed-in browser,
//! stored in the database (so that every host behind a load balancer knows
//! it, and a restart signs no one out), expiring after `[dashboard]
//! session_minutes`.
//!
//! The browser holds a random session id; the database only its SHA-256.
//! Each session has its own CSRF token, which every form the dashboard
//! renders carries and every state-changing request must send back.

use std::time::Duration;

use sha2::Digest;

use super::OrderError;
use crate::storage::{self, Database, SessionRecord};

/// A session id or CSRF token: 32 bytes of the OS's CSPRNG, as hex.
pub fn random_token() -> Result<String, OrderError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| OrderError::Internal(format!("no random bytes: {error}")))?;
    Ok(hex::encode(bytes))
}

/// A session that was just made: its id goes to the browser's cookie.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub session: SessionRecord,
}

/// Signs staff in and out.
#[derive(Clone)]
pub struct SessionService {
    db: Database,
    ttl: Duration,
}

impl SessionService {
    pub fn new(db: Database, ttl: Duration) -> SessionService {
        SessionService { db, ttl }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for the admin token whose SHA-256 is `token_sha256`
    /// (checked by the caller); forgets the sessions that expired.
    pub async fn sign_in(&self, token_sha256: &str, token_name: &str) -> Result<NewSession, OrderError> {
        let id = random_token()?;
        let now = storage::now_ms();
        let session = SessionRecord {
            id_sha256: digest(&id),
            token_sha256: token_sha256.to_string(),
            token_name: token_name.to_string(),
            csrf: random_token()?,
            created_at: now,
            expires_at: now.saturating_add(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)),
        };
        let mut transaction = self.db.begin_write().await?;
        storage::delete_expired_sessions(&mut transaction, now).await?;
        storage::insert_session(&mut transaction, &session).await?;
        transaction.commit().await?;
        Ok(NewSession { id, session })
    }

    /// The live session of the browser whose cookie holds `id`.
    pub async fn find(&self, id: &str) -> Result<Option<SessionRecord>, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        Ok(storage::live_session(&mut connection, &digest(id), storage::now_ms()).await?)
    }

    /// Ends the session of `id` (nothing if there is none).
    pub async fn sign_out(&self, id: &str) -> Result<(), OrderError> {
        let mut transaction = self.db.begin_write().await?;
        storage::delete_session(&mut transaction, &digest(id)).await?;
        transaction.commit().await?;
        Ok(())
    }
}

fn digest(id: &str) -> String {
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}
