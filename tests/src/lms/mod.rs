//! An LMS stand-in: a small HTTP server on a loopback port that implements
//! the parts of the edX LMS that the shipped modules call, as the real LMS
//! answers them (see shared/reference/edx-fulfillment.md):
//!
//! - `POST /oauth2/access_token`: OAuth2 client credentials
//!   ([`CLIENT_ID`], [`CLIENT_SECRET`]) give a JWT with `token_type=jwt`
//!   (else an opaque bearer token); see [`auth`] for the whole rule.
//! - `POST /api/enrollment/v1/enrollment` (API key, JWT or bearer token): 200
//!   with the enrollment record (again 200 for a repeat, which changes
//!   nothing); `is_active: false` deactivates, or answers 400 "Enrollment
//!   mode mismatch" when the learner is in another mode; 400 for a malformed
//!   course key, 406 for an unknown user. Errors carry `message`.
//! - `/api/entitlements/v1/entitlements/` (JWT only; an API key is 401
//!   `{"detail": ...}`): `POST` answers 201 with the entitlement and its
//!   `uuid`, and 400 `{"non_field_errors": [...]}` for a second one with the
//!   same (course_uuid, order_number); `GET ?user=` lists them, paged as
//!   edx-platform does; `GET {uuid}/` reads one; `DELETE {uuid}/` answers 204
//!   (again 204 when already revoked), 404 `{"detail": "Not found."}` for an
//!   unknown uuid.
//!
//! Like the LMS, it ignores `Idempotency-Key`: a repeated request is simply
//! done again (an enrollment is idempotent; a second entitlement is refused).
//!
//! Switches ([`LmsStandIn::set_behaviour`]) make the two APIs (not the token
//! endpoint) fail: an HTTP error for every request, for one course, or for
//! the next N requests; a delay; or no answer at all. It records every
//! request with the status it answered, and counts what each
//! `Idempotency-Key` fulfilled (a new enrollment or entitlement), so tests
//! can prove that no line was fulfilled twice.

pub mod auth;
mod handlers;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use auth::{CLIENT_ID, CLIENT_SECRET};
pub use state::{Behaviour, Enrollment, Entitlement, RecordedRequest, Reply, TokenRequest};

use state::LmsState;

/// A running stand-in; stops when dropped (or, waiting until its port is
/// closed, with [`LmsStandIn::stop`]).
pub struct LmsStandIn {
    addr: SocketAddr,
    state: Arc<LmsState>,
    shutdown: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl LmsStandIn {
    /// Starts on a free loopback port, accepting `api_key`.
    pub async fn start(api_key: &str) -> anyhow::Result<LmsStandIn> {
        LmsStandIn::start_on("127.0.0.1:0".parse()?, api_key).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, api_key: &str) -> anyhow::Result<LmsStandIn> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(LmsState::new(api_key));
        let app = handlers::router(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "LMS stand-in stopped");
            }
        });
        Ok(LmsStandIn {
            addr,
            state,
            shutdown,
            server,
        })
    }

    /// Stops answering and returns once the port is closed: the LMS is down
    /// (connections are refused) until a new stand-in starts on the address.
    pub async fn stop(self) -> SocketAddr {
        let _ = self.shutdown.send(());
        let _ = self.server.await;
        self.addr
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how it answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.set_behaviour(behaviour);
    }

    /// Answers every request with `status` and `message` (an empty message:
    /// an empty body).
    pub fn fail_all(&self, status: u16, message: &str) {
        self.set_behaviour(Behaviour {
            fail_all: Some(Reply::new(status, message)),
            ..Behaviour::default()
        });
    }

    /// Answers requests about `course_key` with `status` and `message`.
    pub fn fail_course(&self, course_key: &str, status: u16, message: &str) {
        self.state.fail_course(course_key, Reply::new(status, message));
    }

    /// Waits `delay` before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.set_behaviour(Behaviour {
            delay: Some(delay),
            ..Behaviour::default()
        });
    }

    /// Does the work, then waits `delay` before answering.
    pub fn delay_answers(&self, delay: Duration) {
        self.set_behaviour(Behaviour {
            answer_delay: Some(delay),
            ..Behaviour::default()
        });
    }

    /// Never answers (the connection stays open until the client gives up).
    pub fn hang(&self) {
        self.set_behaviour(Behaviour {
            hang: true,
            ..Behaviour::default()
        });
    }

    /// Answers normally again, for every course and user.
    pub fn heal(&self) {
        self.state.heal();
    }

    /// Makes `username` unknown (406).
    pub fn forget_user(&self, username: &str) {
        self.state.forget_user(username);
    }

    /// Every request to the two APIs so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Every request to the token endpoint so far, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.token_requests()
    }

    /// Makes the token endpoint answer `status` with `message` (None: give
    /// tokens again). The two APIs' switches do not touch it.
    pub fn fail_token_endpoint(&self, failure: Option<(u16, &str)>) {
        self.state.set_token_failure(failure.map(|(status, message)| Reply::new(status, message)));
    }

    /// Invalidates every token issued so far (a new signing key).
    pub fn rotate_signing_key(&self) {
        self.state.rotate_signing_key();
    }

    /// The `expires_in` of the tokens it issues from now on, in seconds
    /// (an hour unless set).
    pub fn set_token_lifetime_s(&self, seconds: u64) {
        self.state.set_token_lifetime_s(seconds);
    }

    /// The enrollment of `username` in `course_key`, if any.
    pub fn enrollment(&self, username: &str, course_key: &str) -> Option<Enrollment> {
        self.state.enrollment(username, course_key)
    }

    /// The entitlement with `uuid`, if any.
    pub fn entitlement(&self, uuid: &str) -> Option<Entitlement> {
        self.state.entitlement(uuid)
    }

    /// The entitlements of `username` (every one when None), with their
    /// uuids, oldest first.
    pub fn entitlements_of(&self, username: Option<&str>) -> Vec<(String, Entitlement)> {
        self.state.entitlements_of(username)
    }

    /// How many successful enrollment or entitlement creations carried
    /// `idempotency_key`.
    pub fn fulfillments_for_key(&self, idempotency_key: &str) -> usize {
        self.state.fulfillments_for_key(idempotency_key)
    }

    /// Every Idempotency-Key that fulfilled something, with how many times
    /// (a replayed key counts once).
    pub fn fulfillments_by_key(&self) -> std::collections::HashMap<String, usize> {
        self.state.fulfillments_by_key()
    }
}

/// Which LMS API a module calls, and so which credential the host needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmsApi {
    /// The Enrollment API: the API key, as a fixed `X-Edx-Api-Key` header.
    Enrollment,
    /// The Entitlements API: a JWT from the token endpoint.
    Entitlements,
}

/// The `[modules.credentials."<lms_url>"]` table of a module that calls
/// `api` of the stand-in at `lms_url`, accepting `api_key`; the secrets go
/// in files under `secrets_dir` (written here), as an operator would keep
/// them.
pub fn credentials_toml(lms_url: &str, api: LmsApi, api_key: &str, secrets_dir: &std::path::Path) -> String {
    std::fs::create_dir_all(secrets_dir).expect("a folder for the secrets");
    // Many tests write the same files at once: each writes its own copy
    // and renames it into place, so a reader never sees half a file.
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write = |name: &str, value: &str| {
        let path = secrets_dir.join(name);
        let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scratch = secrets_dir.join(format!("{name}.{}.{copy}", std::process::id()));
        std::fs::write(&scratch, format!("{value}\n")).expect("write a secret file");
        std::fs::rename(&scratch, &path).expect("move the secret file into place");
        path.display().to_string()
    };
    match api {
        LmsApi::Enrollment => format!(
            "[modules.credentials.{lms_url:?}]\nkind = \"header\"\nheader = \"X-Edx-Api-Key\"\nsecret = {{ file = {:?} }}\n",
            write("lms-api-key", api_key)
        ),
        LmsApi::Entitlements => format!(
            "[modules.credentials.{lms_url:?}]\nkind = \"oauth2-client-credentials\"\ntoken_url = \"{lms_url}/oauth2/access_token\"\n\
             client_id = {CLIENT_ID:?}\nclient_secret = {{ file = {:?} }}\ntoken_type = \"jwt\"\n",
            write("lms-client-secret", CLIENT_SECRET)
        ),
    }
}
