//! An LMS stand-in: a small HTTP server on a loopback port that implements
//! the parts of the edX LMS that the shipped modules call, as the real LMS
//! answers them (see shared/reference/edx-fulfillment.md):
//!
//! - `POST /api/enrollment/v1/enrollment`: 200 with the enrollment record
//!   (again 200 for a repeat); `is_active: false` deactivates, or answers 400
//!   "Enrollment mode mismatch" when the learner is in another mode; 400 for a
//!   malformed course key, 406 for an unknown user, 403 for a wrong API key.
//! - `POST /api/entitlements/v1/entitlements/`: 201 with the entitlement and
//!   its `uuid`; 400 for a second one with the same (course_uuid, order_number).
//! - `DELETE /api/entitlements/v1/entitlements/{uuid}/`: 204 (again 204 when
//!   already revoked); 404 for an unknown uuid.
//!
//! Switches ([`LmsStandIn::set_behaviour`]) make it fail: an HTTP error for
//! every request, for one course, or for the next N requests; a delay; or no
//! answer at all. It records every request and counts enrollments per
//! `Idempotency-Key`, so tests can prove that no line was fulfilled twice.

mod handlers;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use state::{Behaviour, Enrollment, Entitlement, RecordedRequest, Reply};

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

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// The enrollment of `username` in `course_key`, if any.
    pub fn enrollment(&self, username: &str, course_key: &str) -> Option<Enrollment> {
        self.state.enrollment(username, course_key)
    }

    /// The entitlement with `uuid`, if any.
    pub fn entitlement(&self, uuid: &str) -> Option<Entitlement> {
        self.state.entitlement(uuid)
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
