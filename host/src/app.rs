//! The service assembled from the settings: database, modules, catalog and
//! HTTP API, bound to its address. `serve` runs it; the tests run it on a
//! loopback port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::jobs::Workers;
use crate::services::Services;
use crate::payments::Payments;
use crate::runtime::{ModuleEngine, Runtime};
use crate::settings::{ServerSettings, Settings};
use crate::storage::Database;

/// The token of the demo settings; the host warns while it is accepted.
pub const DEMO_TOKEN: &str = "demo-admin-token";

/// A bound, ready service.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    server: ServerSettings,
}

impl Application {
    /// Connects the database (migrating it), loads the modules, seeds the
    /// catalog from `[[products]]`, and binds `[server] bind` (port 0 picks
    /// a free port).
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        Application::build_with(settings, ModuleEngine::for_settings(settings)?).await
    }

    /// The same on an existing engine (compiled modules are shared).
    pub async fn build_with(settings: &Settings, engine: ModuleEngine) -> anyhow::Result<Application> {
        let services = build_service(settings, engine).await?;
        let demo = crate::api::token_digest(DEMO_TOKEN);
        if settings.api.tokens.iter().any(|token| token.sha256.to_string() == demo) {
            tracing::warn!("the demo API token `{DEMO_TOKEN}` is accepted: replace [[api.tokens]] before going live");
        }
        if settings.api.tokens.is_empty() {
            tracing::warn!("no [[api.tokens]] configured: every API call will be refused (401)");
        }
        let state = AppState {
            services,
            tokens: Arc::new(settings.api.tokens.clone()),
            dashboard: Arc::new(settings.dashboard.clone()),
            metrics_access: Arc::new(settings.metrics.clone()),
        };
        let router = api::router(state.clone(), &settings.server);
        let listener = TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        Ok(Application {
            listener,
            router,
            state,
            server: settings.server.clone(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves, with the job workers, until `shutdown` resolves, then
    /// finishes the requests in flight and stops the workers gracefully.
    /// The workers run in both fulfillment modes: in sync mode they finish
    /// the jobs of requests whose host died, and complete checkouts.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let workers = Workers::start(self.state.services.clone());
        // The workers stop claiming at the signal, while the HTTP requests
        // in flight drain.
        let stop_claiming = workers.stop_claiming();
        let shutdown = async move {
            shutdown.await;
            stop_claiming.now();
        };
        serve(self.listener, self.router, &self.server, shutdown).await;
        workers.shutdown().await;
        Ok(())
    }
}

/// HTTP/1 on `listener` until `shutdown`, then until the connections'
/// requests in flight are answered. hyper itself (not `axum::serve`), for
/// what axum cannot set: the header read time-out (a client that sends
/// nothing, or half a head, is cut off) and the head size limits, which sit
/// above the API's own (`api::limits`) so that the API answers them in the
/// error shape.
async fn serve(listener: TcpListener, router: axum::Router, server: &ServerSettings, shutdown: impl Future<Output = ()>) {
    let limits = api::HeadLimits::of(server);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(server.header_read_timeout_ms.get()))
        .max_buf_size(limits.hyper_buffer())
        .max_header_size(limits.hyper_buffer())
        .max_headers(limits.hyper_max_headers());
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: the connections in
                    // flight go on; try again in a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // The requests in flight end within the request time-out; a client that
    // does not read its answer must not hold the shutdown past that (the
    // work its request started is the executor's, and the workers' shutdown
    // waits for it).
    let drain = Duration::from_millis(server.request_timeout_ms) + Duration::from_secs(5);
    if tokio::time::timeout(drain, connections.shutdown()).await.is_err() {
        tracing::warn!(drain_ms = drain.as_millis() as u64, "connections still open after the drain: closing them");
    }
}

/// The services of `settings`: connects the database (migrating it), loads
/// the modules on `engine`, and seeds the catalog from `[[products]]`.
/// `serve` puts the HTTP API in front of them; `worker` runs only their
/// workers.
pub async fn build_service(settings: &Settings, engine: ModuleEngine) -> anyhow::Result<Services> {
    let database = Database::connect(&settings.database.url, settings.database.max_connections, settings.database.sqlite_synchronous).await?;
    let runtime = Runtime::load_with(engine, settings).await?;
    let services = Services::new(
        database,
        Arc::new(runtime),
        match &settings.payments.test_ledger {
            Some(file) => Payments::with_ledger_file(file.clone()),
            None => Payments::new(),
        },
        settings.orders.clone(),
        settings.fulfillment.clone(),
        &settings.dashboard,
    );
    services
        .catalog
        .seed_products(&settings.products)
        .await
        .with_context(|| format!("invalid [[products]] in {}", settings.path.display()))?;
    Ok(services)
}
