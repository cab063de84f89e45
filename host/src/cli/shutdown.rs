//! The signals that stop `serve` and `worker` gracefully.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal as unix_signal};

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: call it before telling anyone the
/// process is ready (the "listening" banner), so that a SIGTERM sent right
/// after the banner stops the host gracefully instead of killing it.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    let interrupt = unix_signal(SignalKind::interrupt()).ok();
    let terminate = unix_signal(SignalKind::terminate()).ok();
    async move {
        let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
            match stream {
                Some(mut stream) => {
                    stream.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}
