//! `commerce:fulfillment/http`: HTTP requests the host makes for a module,
//! only to the destinations the operator allowed, with a time and size cap,
//! and with the credentials the settings give for the destination.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::credentials::{Credential, CredentialError, Credentials};
use crate::runtime::bindings::http::{Error, Header, Host, Request, Response};
use crate::settings::{AllowedHost, ModuleSettings};

/// Headers a module may not set: they decide where and how the request
/// travels (a `Host` of another virtual host behind the same address would
/// take the host's credential there), so the HTTP client sets them.
const FORBIDDEN_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];

/// What one module may do over HTTP.
#[derive(Debug)]
pub struct HttpPolicy {
    pub allowed_hosts: Vec<AllowedHost>,
    /// The longest a call may take, from connecting to the last body byte.
    pub timeout: Duration,
    pub max_request_bytes: u64,
    pub max_response_bytes: u64,
    /// Calls per order (per store).
    pub max_calls: u32,
    /// What the host adds to requests, per destination.
    pub credentials: Credentials,
}

impl HttpPolicy {
    /// The policy of `settings`; an error names the credential that cannot
    /// be used.
    pub fn from_settings(settings: &ModuleSettings) -> Result<HttpPolicy, String> {
        let limits = &settings.limits;
        Ok(HttpPolicy {
            allowed_hosts: settings.allowed_hosts.clone(),
            timeout: limits.http_timeout(),
            max_request_bytes: limits.http_request_bytes,
            max_response_bytes: limits.http_response_bytes,
            max_calls: limits.http_calls,
            credentials: Credentials::from_settings(&settings.credentials)?,
        })
    }

    fn allows(&self, url: &reqwest::Url) -> bool {
        self.allowed_hosts.iter().any(|allowed| allowed.allows(url))
    }
}

/// The client (shared by all modules: one connection pool) and the policy
/// of the module the store belongs to.
pub struct HttpCtx {
    client: reqwest::Client,
    policy: Arc<HttpPolicy>,
    module: String,
    /// Requests the module asked for in this store, refused ones included.
    calls: u32,
}

impl HttpCtx {
    pub fn new(client: reqwest::Client, policy: Arc<HttpPolicy>, module: &str) -> HttpCtx {
        HttpCtx {
            client,
            policy,
            module: module.to_string(),
            calls: 0,
        }
    }

    /// Validates `request` against the policy and builds it; nothing is sent.
    fn build(&mut self, request: Request) -> Result<Outgoing, Error> {
        self.calls = self.calls.saturating_add(1);
        if self.calls > self.policy.max_calls {
            return Err(Error::Refused(format!(
                "module {} used up its {} HTTP calls for this order (http_calls)",
                self.module, self.policy.max_calls
            )));
        }
        if let Some(body) = &request.body
            && body.len() as u64 > self.policy.max_request_bytes
        {
            return Err(Error::InvalidRequest(format!(
                "request body of {} bytes is over the module's limit of {} bytes (http_request_bytes)",
                body.len(),
                self.policy.max_request_bytes
            )));
        }
        let url = reqwest::Url::parse(&request.url)
            .map_err(|error| Error::InvalidRequest(format!("invalid URL `{}`: {error}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest(format!("unsupported scheme in `{url}`: use http or https")));
        }
        if !self.policy.allows(&url) {
            let origin = url.origin().ascii_serialization();
            tracing::warn!(module = %self.module, destination = %origin, "refused HTTP request outside allowed_hosts");
            return Err(Error::Refused(format!(
                "{origin} is not in allowed_hosts of module {}",
                self.module
            )));
        }
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            "DELETE" => reqwest::Method::DELETE,
            "HEAD" => reqwest::Method::HEAD,
            other => return Err(Error::InvalidRequest(format!("unsupported method `{other}`"))),
        };
        let mut headers = HeaderMap::new();
        for Header { name, value } in request.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::InvalidRequest(format!("invalid header name `{name}`")))?;
            if FORBIDDEN_HEADERS.contains(&header_name.as_str()) {
                return Err(Error::InvalidRequest(format!(
                    "header `{name}` is set by the host's HTTP client; a module may not send it"
                )));
            }
            let header_value = HeaderValue::from_str(&value)
                .map_err(|_| Error::InvalidRequest(format!("invalid value for header `{name}`")))?;
            headers.append(header_name, header_value);
        }
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .map_or(self.policy.timeout, |asked| asked.min(self.policy.timeout));
        let mut builder = self.client.request(method, url.clone()).headers(headers).timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        Ok(Outgoing { builder, url, timeout })
    }

    /// Sends `outgoing` with the destination's credential, if it has one.
    /// A credential the host fetched (an OAuth2 token) that the destination
    /// refuses with 401 is fetched again and the request sent once more:
    /// a refused request was not acted on.
    async fn exchange_with_credential(&self, outgoing: Outgoing) -> Result<Response, Error> {
        let Some(credential) = self.policy.credentials.for_url(&outgoing.url) else {
            return self.exchange(outgoing.builder).await;
        };
        let retry = outgoing.builder.try_clone();
        let (builder, header) = self.authenticated(credential, outgoing.builder, outgoing.timeout).await?;
        let response = self.exchange(builder).await?;
        if response.status != 401 {
            return Ok(response);
        }
        match retry {
            Some(retry) if credential.rejected(&header).await => {
                tracing::info!(module = %self.module, url = %outgoing.url, "the destination refused the host's token (401): fetching a new one");
                let (builder, _) = self.authenticated(credential, retry, outgoing.timeout).await?;
                self.exchange(builder).await
            }
            _ => Ok(response),
        }
    }

    /// `builder` with the credential's header in place of any the module set.
    async fn authenticated(
        &self,
        credential: &Credential,
        builder: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(reqwest::RequestBuilder, HeaderValue), Error> {
        let (name, value) = credential.header(&self.client, timeout).await.map_err(|error| {
            tracing::warn!(module = %self.module, %error, "no credential for the module's request");
            credential_error(&error)
        })?;
        let mut request = builder
            .build()
            .map_err(|error| Error::InvalidRequest(error.to_string()))?;
        request.headers_mut().insert(name, value.clone());
        Ok((reqwest::RequestBuilder::from_parts(self.client.clone(), request), value))
    }

    /// Sends and reads the whole body, up to the cap.
    async fn exchange(&self, builder: reqwest::RequestBuilder) -> Result<Response, Error> {
        let mut response = builder.send().await.map_err(transport_error)?;
        let cap = self.policy.max_response_bytes;
        if response.content_length().is_some_and(|length| length > cap) {
            return Err(Error::ResponseTooLarge(cap));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_string(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(Error::ResponseTooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }
}

/// A validated request, ready to send.
struct Outgoing {
    builder: reqwest::RequestBuilder,
    url: reqwest::Url,
    timeout: Duration,
}

/// Classifies a transport failure as the reference does (Python `requests`
/// raises `ConnectionError` for all of these): a time-out is `timeout`;
/// a connection refused, reset or closed before the whole answer came, a
/// TLS failure, a DNS failure or an answer that is not HTTP is
/// `connect-failed` (a network problem); a request the client could not
/// build is `invalid-request`. The text keeps the root cause
/// ("Connection refused").
fn transport_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        return Error::Timeout;
    }
    let text = error_chain(&error);
    if error.is_builder() {
        Error::InvalidRequest(text)
    } else {
        Error::ConnectFailed(text)
    }
}

/// `error` and its causes, joined by ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// What the module learns when the host could not get a credential: a
/// token endpoint that cannot be reached or does not answer in time = the
/// network failure or time-out it would have had; a refused client =
/// `refused` (the settings must change); anything else = `other`. The
/// text never carries a secret.
fn credential_error(error: &CredentialError) -> Error {
    match error {
        CredentialError::Transport { source, .. } if source.is_timeout() => Error::Timeout,
        CredentialError::Transport { .. } => Error::ConnectFailed(error_chain(error)),
        CredentialError::Refused { .. } => Error::Refused(error.to_string()),
        CredentialError::Failed { .. } => Error::Other(error.to_string()),
        CredentialError::Recent(first) => credential_error(first),
    }
}

impl Host for HttpCtx {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        let outgoing = self.build(request)?;
        // The parsed URL: the text the module gave may hold line breaks
        // (the parser drops them), which must not reach the log.
        let url = outgoing.url.clone();
        let timeout = outgoing.timeout;
        let started = std::time::Instant::now();
        // reqwest's timeout covers the body too; this outer one is the
        // guarantee, whatever the client does (a token fetch included).
        let result = match tokio::time::timeout(timeout, self.exchange_with_credential(outgoing)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(response) => tracing::debug!(module = %self.module, %url, status = response.status, elapsed_ms, "module HTTP call"),
            Err(error) => tracing::info!(module = %self.module, %url, ?error, elapsed_ms, "module HTTP call failed"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> HttpCtx {
        let policy = HttpPolicy {
            allowed_hosts: vec![AllowedHost::try_from("https://lms.example.com".to_string()).expect("valid")],
            timeout: Duration::from_secs(1),
            max_request_bytes: 1024,
            max_response_bytes: 1024,
            max_calls: 10,
            credentials: Credentials::default(),
        };
        HttpCtx::new(reqwest::Client::new(), Arc::new(policy), "m")
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            url: "https://lms.example.com/api".into(),
            headers: headers
                .iter()
                .map(|(name, value)| Header { name: (*name).into(), value: (*value).into() })
                .collect(),
            body: None,
            timeout_ms: None,
        }
    }

    #[test]
    fn a_module_may_not_steer_the_request_with_host_or_hop_by_hop_headers() {
        for name in ["Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade"] {
            match ctx().build(request(&[(name, "other-vhost.example.com")])) {
                Err(Error::InvalidRequest(why)) => assert!(why.contains(&format!("header `{name}`")), "{why}"),
                Err(other) => panic!("{name}: {other:?}"),
                Ok(_) => panic!("{name} was let through"),
            }
        }
        assert!(ctx().build(request(&[("Idempotency-Key", "EDX-1-1"), ("Accept", "application/json")])).is_ok());
    }
}
