//! `allowed_hosts` entries: where a module may send HTTP requests.

use std::fmt;

use serde::Deserialize;

/// One destination a module may call: a scheme, a host and a port, written
/// as `https://lms.example.com` (the scheme's default port) or
/// `http://127.0.0.1:18000`. A request must match all three exactly; there
/// are no wildcards, so that a grant reads as what it allows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedHost {
    scheme: String,
    host: String,
    port: u16,
}

impl AllowedHost {
    /// Whether a request to `url` is allowed by this entry.
    pub fn allows(&self, url: &reqwest::Url) -> bool {
        url.scheme() == self.scheme
            && url.host_str().is_some_and(|host| host.eq_ignore_ascii_case(&self.host))
            && url.port_or_known_default() == Some(self.port)
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let invalid = |why: &str| {
            format!("invalid allowed host `{text}`: {why}; write it as `https://host` or `http://host:port`")
        };
        let url = reqwest::Url::parse(&text).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a path, query or fragment is not allowed"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials are not allowed"));
        }
        let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_ascii_lowercase();
        let port = url.port_or_known_default().ok_or_else(|| invalid("no port"))?;
        Ok(AllowedHost {
            scheme: url.scheme().to_string(),
            host,
            port,
        })
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}
