/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no database this host supports.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE")]
    UnsupportedUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot connect to the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    /// The migrations failed.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored row does not read back (a value the host never writes).
    #[error("corrupt row in {table}: {message}")]
    Corrupt { table: &'static str, message: String },
}

impl StorageError {
    pub(super) fn connect(url: &str) -> impl Fn(sqlx::Error) -> StorageError + '_ {
        move |source| StorageError::Connect {
            url: redact(url),
            source,
        }
    }

    /// Whether the query failed on a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StorageError::Query(sqlx::Error::Database(error)) => error.is_unique_violation(),
            _ => false,
        }
    }
}

/// The URL without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
