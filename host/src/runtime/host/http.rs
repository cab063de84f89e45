//! `commerce:fulfillment/http`: HTTP requests the host makes for a module,
//! only to the destinations the operator allowed, with a time and size cap.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::runtime::bindings::http::{Error, Header, Host, Request, Response};
use crate::settings::{AllowedHost, ModuleSettings};

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
}

impl HttpPolicy {
    pub fn from_settings(settings: &ModuleSettings) -> HttpPolicy {
        let limits = &settings.limits;
        HttpPolicy {
            allowed_hosts: settings.allowed_hosts.clone(),
            timeout: limits.http_timeout(),
            max_request_bytes: limits.http_request_bytes,
            max_response_bytes: limits.http_response_bytes,
            max_calls: limits.http_calls,
        }
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
    fn build(&mut self, request: Request) -> Result<(reqwest::RequestBuilder, Duration), Error> {
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
            let header_value = HeaderValue::from_str(&value)
                .map_err(|_| Error::InvalidRequest(format!("invalid value for header `{name}`")))?;
            headers.append(header_name, header_value);
        }
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .map_or(self.policy.timeout, |asked| asked.min(self.policy.timeout));
        let mut builder = self.client.request(method, url).headers(headers).timeout(timeout);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        Ok((builder, timeout))
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

/// Tells a connection failure from a time-out from anything else, with the
/// root cause ("Connection refused") in the text.
fn transport_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        return Error::Timeout;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if error.is_connect() {
        Error::ConnectFailed(text)
    } else if error.is_builder() {
        Error::InvalidRequest(text)
    } else {
        Error::Other(text)
    }
}

impl Host for HttpCtx {
    async fn send(&mut self, request: Request) -> Result<Response, Error> {
        let url = request.url.clone();
        let (builder, timeout) = self.build(request)?;
        let started = std::time::Instant::now();
        // reqwest's timeout covers the body too; this outer one is the
        // guarantee, whatever the client does.
        let result = match tokio::time::timeout(timeout, self.exchange(builder)).await {
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
