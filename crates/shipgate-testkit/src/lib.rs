//! Test helpers shared by every shipgate crate's tests (a dev-dependency only).
//!
//! - [`Canary`]: a unique secret value to plant in every source, and the assertion that it
//!   appears in no output. Every command that handles secrets runs it in its tests: check-env,
//!   secrets, smoke, and the pipeline, ledger and notifications as they land.
//! - [`serve`] / [`serve_on_thread`]: a real HTTP server on loopback.
//! - [`fakes`]: Vault KV v2 and the Kubernetes Secret API, as documented.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

pub mod argo;
pub mod browser;
pub mod fakes;
pub mod fly;
pub mod github;
pub mod graphql;
pub mod openapi;
pub mod railway;
pub mod registry;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;

/// A unique value that must never be seen outside the process that uses it.
#[derive(Debug, Clone)]
pub struct Canary(String);

impl Canary {
    /// A new canary; `label` makes failures readable (`canary-vault-3f2a…`).
    pub fn new(label: &str) -> Canary {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Canary(format!(
            "canary-{label}-{:08x}{n:04x}",
            nanos ^ std::process::id()
        ))
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.0
    }

    /// Panics when the canary (or its base64 or URL-encoded form) appears in `text`. `what`
    /// names the output (stdout, a log, a report) in the failure message.
    pub fn assert_absent(&self, what: &str, text: &str) {
        use base64::Engine;
        let forms = [
            self.0.clone(),
            base64::engine::general_purpose::STANDARD.encode(&self.0),
        ];
        for form in forms {
            if text.contains(&form) {
                panic!("canary {} leaked into {what}:\n{text}", self.0);
            }
        }
    }
}

/// Serves `router` on a loopback port of the current runtime.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Serves `router` on a loopback port from a thread with its own runtime: for tests that run
/// a child process or block.
pub fn serve_on_thread(router: Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// A TLS server on a loopback port, from a thread with its own runtime, whose certificate is
/// a CA certificate (`tls/ca-as-server.pem`, for 127.0.0.1, valid until 2126): clients that
/// do not trust it fail with an unknown issuer; clients that trust it (`SSL_CERT_FILE`) fail
/// because a CA certificate is used as a server certificate. It completes handshakes and
/// answers nothing more.
pub fn serve_tls_ca_as_server_on_thread() -> SocketAddr {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tls");
    let certs = vec![CertificateDer::from_pem_file(dir.join("ca-as-server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("ca-as-server.key")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(stream).await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// The path of the certificate [`serve_tls_ca_as_server_on_thread`] presents.
pub fn ca_as_server_certificate() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/ca-as-server.pem")
}

/// `s` as a TOML basic string (quotes, backslashes and control characters escaped), for
/// tests that write generated configuration.
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `future` to completion on a new thread with a runtime of its own: for `Drop` guards
/// of async tests (stopping the processes a test started even when it fails), where the
/// test's own runtime cannot be blocked on.
pub fn block_on_thread<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || runtime().block_on(future))
        .join()
        .unwrap()
}

/// A small multi-threaded runtime (one worker) for synchronous tests that start fakes or
/// seed a database before running the binary.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A loopback address where nothing listens (also a free port for a server a test starts).
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The URL of moto's AWS server, which `scripts/test` starts (`SHIPGATE_TEST_MOTO_URL`).
pub fn moto_url() -> String {
    std::env::var("SHIPGATE_TEST_MOTO_URL").expect(
        "this test needs moto's AWS server: run ./scripts/test, which starts it, or set SHIPGATE_TEST_MOTO_URL",
    )
}

/// Creates a Secrets Manager secret on moto (moto accepts any signature). `field` is
/// `SecretString` or `SecretBinary` (base64). An existing secret of that name is kept.
pub async fn moto_create_secret(name: &str, field: &str, value: &str) {
    let body = serde_json::json!({ "Name": name, field: value });
    let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
    let response = client
        .post(moto_url())
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Target", "secretsmanager.CreateSecret")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261123/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(
        status.is_success() || text.contains("ResourceExistsException"),
        "moto CreateSecret: {status}: {text}"
    );
}

/// A fresh, empty database on the PostgreSQL server `scripts/test` starts
/// (`SHIPGATE_TEST_POSTGRES_URL`); returns its URL.
pub async fn postgres_database() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let admin = std::env::var("SHIPGATE_TEST_POSTGRES_URL").expect(
        "this test needs PostgreSQL: run ./scripts/test, which starts it, or set SHIPGATE_TEST_POSTGRES_URL",
    );
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "shipgate_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    // The name is made of letters, digits and underscores only.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = admin.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// Makes the ledger at `url` look as it did before its delivery rollup (ledger migration 4):
/// the rollup, its indexes and the restore column gone, the migration unapplied. Opening the
/// ledger again runs the migration's backfill, as for a ledger created by an older shipgate
/// (or rows loaded behind the ledger's back, as the report benchmark does).
pub async fn forget_delivery_rollup(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for statement in [
        "DROP TABLE delivery_rollup",
        "DROP INDEX runs_by_start",
        "DROP INDEX runs_unrestored",
        "ALTER TABLE runs DROP COLUMN restored_ms",
        "ALTER TABLE runs DROP COLUMN commit_ms",
        "DELETE FROM shipgate_schema WHERE version = 4",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// Makes the ledger at `url` look as it did before the dashboard's tables (ledger migration
/// 7): stored summaries, latency rollups and what runs now gone, the migration unapplied.
/// Opening the ledger again backfills what runs now from the deployments, as for a ledger
/// created by an older shipgate (or rows loaded behind the ledger's back, as the dashboard
/// benchmark does).
pub async fn forget_dashboard_tables(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    for statement in [
        "DROP TABLE live_releases",
        "DROP TABLE run_summaries",
        "DROP TABLE monitor_latency",
        "DROP TABLE monitor_latency_hourly",
        "DELETE FROM shipgate_schema WHERE version = 7",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// A GET from a test that runs no runtime of its own (on its own current-thread runtime),
/// with a bearer token when given: the status and body, `None` when nothing answers (a server
/// still starting).
pub fn http_get(url: &str, bearer: Option<&str>) -> Option<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
        let mut request = client.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    })
}

/// SQL that inserts `count` generated rows into `table` (`names`), each row's values the SQL
/// expressions `columns` over the row number `i` (from 0), optionally filtered by `filter`
/// (`WHERE i % 10 = 2`): `generate_series` on Postgres, a recursive CTE on SQLite. For the
/// benchmarks that load a million runs.
pub fn generated_rows(
    postgres: bool,
    table: &str,
    names: &str,
    columns: &str,
    count: i64,
    filter: &str,
) -> String {
    if postgres {
        format!(
            "INSERT INTO {table} ({names}) SELECT {columns} FROM generate_series(CAST(0 AS BIGINT), {}) AS s(i) {filter}",
            count - 1
        )
    } else {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) \
             INSERT INTO {table} ({names}) SELECT {columns} FROM s {filter}",
            count - 1
        )
    }
}

/// The README demo's configuration (fixtures/demo/shipgate.toml) for a test of the `shipgate`
/// binary (which runs the demo service and the router itself): users' port `port`, state
/// under `state`.
pub fn demo_config(state: &std::path::Path, port: u16) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/shipgate.toml"),
    )
    .unwrap()
    .replace("18080", &port.to_string())
    .replace(".shipgate/demo", &state.display().to_string())
}

/// A copy of `fixtures/init/NAME` (a repository shipgate init reads) in a fresh directory, under
/// its own name (the app name comes from it). Keep the `TempDir` alive while you use it.
pub fn init_fixture(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join(name);
    copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/init")
            .join(name),
        &repo,
    );
    (dir, repo)
}

/// The fake `helm` executable of the Helm provider's tests, with its state in `state` (created,
/// reporting helm `version`): returns the executable. Pass it as `HELM_BIN` and `state` as
/// `FAKE_HELM_DIR`; `state/argv.log` lists the commands it ran.
pub fn fake_helm(state: &std::path::Path, version: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(state.join("version"), version).unwrap();
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shipgate-helm/tests/fake-helm")
}

/// How many runs a million-run ledger benchmark seeds: 1,000,000 under `cargo bench` (which
/// passes `--bench`), 2,000 when `cargo test --all-targets` runs it as a quick check, or
/// `SHIPGATE_BENCH_RUNS`.
pub fn bench_runs() -> i64 {
    let full = std::env::args().any(|a| a == "--bench");
    std::env::var("SHIPGATE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 2_000 })
}

/// Runs a ledger benchmark (`measure(name, url, runs)`) on a fresh SQLite ledger, then on a
/// fresh Postgres database when `SHIPGATE_TEST_POSTGRES_URL` is set (says so when it is not);
/// `label` names the benchmark in that line.
#[allow(clippy::print_stdout)] // benchmarks report on stdout
pub fn bench_on_both_ledgers<F, Fut>(label: &str, measure: F)
where
    F: Fn(&'static str, String, i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runs = bench_runs();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}/ledger.db", dir.path().display());
        measure("SQLite", sqlite, runs).await;
        if std::env::var("SHIPGATE_TEST_POSTGRES_URL").is_ok() {
            let postgres = postgres_database().await;
            measure("Postgres", postgres, runs).await;
        } else {
            println!("{label} Postgres: skipped (set SHIPGATE_TEST_POSTGRES_URL)");
        }
    });
}

/// The path of binary `bin` of workspace package `package`, built (once per test process)
/// with the cargo that runs the tests, in the same profile and target directory. For tests
/// that need another package's binaries, such as the local provider's router and demo service.
pub fn workspace_binary(package: &str, bin: &str) -> std::path::PathBuf {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    // target/<profile>/deps/<test binary> → target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_owned();
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let built = built.get_or_insert_with(HashSet::new);
    if built.insert(package.to_owned()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = std::process::Command::new(cargo);
        command.args(["build", "--quiet", "--package", package, "--bins"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let status = command.status().unwrap();
        assert!(status.success(), "cargo build -p {package} --bins failed");
    }
    let path = profile_dir.join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
