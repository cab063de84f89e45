//! A TCP server on a loopback port that breaks HTTP on purpose, to test how
//! the host classifies transport failures: it reads the request and then
//! closes the connection without answering, resets it, or answers with
//! something that is not HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How each connection is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// Reads the request, then closes the connection: "connection closed
    /// before message completed".
    CloseBeforeAnswer,
    /// Reads the request, then resets the connection (RST).
    Reset,
    /// Reads the request, then writes bytes that are not an HTTP answer.
    Garbage,
    /// Answers plain HTTP at once, without reading: a TLS client's
    /// handshake fails.
    PlainHttpAtOnce,
    /// Reads the request, answers 200 with a `Content-Length` of 100 and
    /// closes after 10 bytes of the body.
    TruncatedBody,
}

/// A running broken server; stops when dropped.
pub struct BrokenServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl BrokenServer {
    pub async fn start(breakage: Breakage) -> std::io::Result<BrokenServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if breakage == Breakage::PlainHttpAtOnce {
                        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
                        return;
                    }
                    // The request head at least: read until a blank line.
                    let mut seen = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => seen.extend_from_slice(&buffer[..read]),
                        }
                    }
                    match breakage {
                        Breakage::CloseBeforeAnswer => {}
                        Breakage::Reset => {
                            // SO_LINGER 0: closing sends RST instead of FIN.
                            #[allow(deprecated)]
                            let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                        }
                        Breakage::Garbage => {
                            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
                        }
                        Breakage::PlainHttpAtOnce => {}
                        Breakage::TruncatedBody => {
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\": \"")
                                .await;
                        }
                    }
                    drop(stream);
                });
            }
        });
        Ok(BrokenServer { addr, connections, task })
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for BrokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
