use std::path::PathBuf;

/// Why the settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read settings file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or a key or value is wrong; `message` comes
    /// from the TOML parser and names the line, the column and the key.
    #[error("invalid settings file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Two `[[modules]]` entries share a name.
    #[error(
        "invalid settings file {}: module name `{name}` is used by [[modules]] entries {first} and {second}; names must be unique",
        path.display()
    )]
    DuplicateModule {
        path: PathBuf,
        name: String,
        first: usize,
        second: usize,
    },
    /// A `[modules.credentials]` entry cannot be used: its destination is not
    /// allowed, or its secret cannot be read.
    #[error("invalid settings file {}: module `{module}`, credentials for {destination}: {message}", path.display())]
    Credential {
        path: PathBuf,
        module: String,
        destination: String,
        message: String,
    },
    /// `[fulfillment] sync_wait_ms` is not under `[server] request_timeout_ms`:
    /// the request would time out (503) before it could answer 202.
    #[error(
        "invalid settings file {}: [fulfillment] sync_wait_ms = {sync_wait_ms} must be less than [server] request_timeout_ms = {request_timeout_ms}",
        path.display()
    )]
    SyncWaitTooLong {
        path: PathBuf,
        sync_wait_ms: u64,
        request_timeout_ms: u64,
    },
}
