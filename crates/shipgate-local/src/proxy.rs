//! The local router (`shipgate local-router`, or the `shipgate-local-router` executable): the
//! stable port of a local service, an HTTP/1.1 reverse proxy. Every request goes to a backend
//! chosen by the backend file at that moment (one port, or ports with shares for a canary: see
//! [`crate::routing`]), so the local provider moves traffic by rewriting one small file,
//! effective from the next request. The router counts requests, server errors and latency per
//! backend and writes them to the stats file. Once it listens, it writes `PID ADDR` to the
//! ready file: the provider's proof that the stable port is this router's and not another
//! process's.
//!
//! Requests only: protocol upgrades (WebSocket) are not forwarded.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::routing::{Route, RouterStats, STATS_INTERVAL, write_atomically};
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Body = Either<Incoming, Full<Bytes>>;

/// What every connection shares.
struct Router {
    backend_file: PathBuf,
    warn: Box<dyn Fn(&str) + Send + Sync>,
    /// Requests seen, for the interleaved choice of backend.
    next: AtomicU64,
    stats: Mutex<RouterStats>,
    /// Whether the stats changed since they were last written.
    dirty: AtomicBool,
}

impl Router {
    async fn handle(&self, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let route = tokio::fs::read_to_string(&self.backend_file)
            .await
            .ok()
            .and_then(|text| Route::parse(&text));
        let Some(port) = route.and_then(|r| r.pick(self.next.fetch_add(1, Ordering::Relaxed)))
        else {
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "shipgate-local-router: no backend yet (nothing is deployed)\n".to_owned(),
            ));
        };
        let started = Instant::now();
        let (status, response) = match forward(port, request).await {
            Ok(response) => (response.status().as_u16(), response.map(Either::Left)),
            Err(err) => (
                0,
                plain(
                    StatusCode::BAD_GATEWAY,
                    format!("shipgate-local-router: 127.0.0.1:{port} did not answer: {err}\n"),
                ),
            ),
        };
        self.record(port, status, started.elapsed());
        Ok(response)
    }

    fn record(&self, port: u16, status: u16, latency: Duration) {
        let mut stats = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stats
            .backends
            .entry(port)
            .or_default()
            .record(status, latency);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Rewrites the stats file whenever the counts changed, at most every [`STATS_INTERVAL`].
    async fn write_stats(&self, path: PathBuf) {
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        loop {
            tick.tick().await;
            if !self.dirty.swap(false, Ordering::Relaxed) {
                continue;
            }
            let json = {
                let stats = self
                    .stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                serde_json::to_vec(&*stats).unwrap_or_default()
            };
            // Off the request path: a slow disk never holds a request up.
            let file = path.clone();
            let written = tokio::task::spawn_blocking(move || write_atomically(&file, &json)).await;
            if let Ok(Err(err)) = written {
                (self.warn)(&format!("cannot write {}: {err}", path.display()));
            }
        }
    }
}

/// One request to the backend on its own connection; the response streams back as it comes.
async fn forward(
    port: u16,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    response
}

/// The router's command line: `--listen ADDR --backend-file FILE --ready-file FILE
/// [--stats-file FILE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyArgs {
    /// The stable address (`127.0.0.1:PORT`).
    pub listen: String,
    /// Where the provider writes the route.
    pub backend_file: PathBuf,
    /// Where the router writes `PID ADDR` once it listens.
    pub ready_file: PathBuf,
    /// Where the router writes its per-backend counts (default: `stats.json` beside the
    /// backend file).
    pub stats_file: PathBuf,
}

/// The usage line of the router's command line.
pub const PROXY_USAGE: &str =
    "--listen 127.0.0.1:PORT --backend-file FILE --ready-file FILE [--stats-file FILE]";

impl ProxyArgs {
    /// Parses the arguments after the program name; `Err` is the usage line.
    pub fn parse(args: &[String]) -> Result<ProxyArgs, &'static str> {
        let optional = |flag: &str| -> Result<Option<String>, &'static str> {
            match args.iter().position(|a| a == flag) {
                None => Ok(None),
                Some(i) => args.get(i + 1).cloned().map(Some).ok_or(PROXY_USAGE),
            }
        };
        let value = |flag: &str| optional(flag)?.ok_or(PROXY_USAGE);
        let backend_file = PathBuf::from(value("--backend-file")?);
        Ok(ProxyArgs {
            listen: value("--listen")?,
            ready_file: PathBuf::from(value("--ready-file")?),
            stats_file: optional("--stats-file")?
                .map_or_else(|| backend_file.with_file_name("stats.json"), PathBuf::from),
            backend_file,
        })
    }
}

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The stable address is taken or not allowed.
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        /// The address.
        listen: String,
        /// Why.
        source: std::io::Error,
    },
    /// The ready file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Ready {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Listens on `args.listen`, writes the ready file, and forwards requests until the process
/// ends. `warn` receives problems that do not stop it (a stats file that cannot be written).
pub async fn serve(
    args: ProxyArgs,
    warn: impl Fn(&str) + Send + Sync + 'static,
) -> Result<Infallible, ProxyError> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|source| ProxyError::Listen {
            listen: args.listen.clone(),
            source,
        })?;
    let ready = format!("{} {}", std::process::id(), args.listen);
    write_atomically(&args.ready_file, ready.as_bytes()).map_err(|source| ProxyError::Ready {
        path: args.ready_file.clone(),
        source,
    })?;
    let router = Arc::new(Router {
        backend_file: args.backend_file,
        warn: Box::new(warn),
        next: AtomicU64::new(0),
        stats: Mutex::new(RouterStats::default()),
        dirty: AtomicBool::new(false),
    });
    tokio::spawn({
        let router = Arc::clone(&router);
        let stats_file = args.stats_file;
        async move { router.write_stats(stats_file).await }
    });
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let router = Arc::clone(&router);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let router = Arc::clone(&router);
                async move { router.handle(request).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(inbound), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_with_the_stats_file_beside_the_backend_file_by_default() {
        let args: Vec<String> = [
            "--listen",
            "127.0.0.1:1",
            "--backend-file",
            "/s/api/backend",
            "--ready-file",
            "/s/api/ready",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let parsed = ProxyArgs::parse(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.stats_file, PathBuf::from("/s/api/stats.json"));
        assert_eq!(ProxyArgs::parse(&args[..2]), Err(PROXY_USAGE));
        assert_eq!(ProxyArgs::parse(&["--listen".to_owned()]), Err(PROXY_USAGE));
    }
}
