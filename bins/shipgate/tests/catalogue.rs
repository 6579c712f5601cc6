//! The catalogue of bad inputs: one table per input surface (configuration, variables, smoke
//! spec, command line, provider responses), each case run through the real binary in an
//! empty directory. Every
//! case states its exit code, the words its message must contain, and what must never appear
//! (a planted secret, a raw control character, serde's or rustls's internal names, an echo of
//! a huge value). A new bad input found in the field becomes a row here.

#![allow(clippy::unwrap_used)]

use assert_cmd::Command;

/// A planted secret: it is a value in many rows and must appear in no output.
const CANARY: &str = "canary-catalogue-3f9a1c";

/// One bad input and what shipgate must answer.
struct Case {
    /// What the row is about.
    name: &'static str,
    /// `shipgate.toml`, when the case needs one.
    config: Option<&'static str>,
    /// `spec.toml`, when the case needs one.
    spec: Option<&'static str>,
    /// The command line after `shipgate`.
    args: &'static [&'static str],
    /// The process environment (nothing else is inherited).
    vars: &'static [(&'static str, &'static str)],
    /// The exit code.
    code: i32,
    /// Words the output (stdout and stderr) must contain.
    says: &'static [&'static str],
}

/// Never in any output: internal names that mean nothing to a user.
const NEVER: &[&str] = &[
    "untagged enum",
    "OtherError",
    "InvalidContentType",
    "expected u16",
    "expected u32",
    "expected u64",
    "panicked",
    "RUST_BACKTRACE",
    "sqlx::",
];

fn run(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(config) = case.config {
        std::fs::write(dir.path().join("shipgate.toml"), config).unwrap();
    }
    if let Some(spec) = case.spec {
        std::fs::write(dir.path().join("spec.toml"), spec).unwrap();
    }
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir.path())
        .env_clear()
        .envs(case.vars.iter().copied())
        .args(case.args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let name = case.name;
    assert_eq!(output.status.code(), Some(case.code), "{name}:\n{text}");
    for words in case.says {
        assert!(text.contains(words), "{name}: missing `{words}`:\n{text}");
    }
    for words in NEVER.iter().chain(&[CANARY]) {
        assert!(
            !text.contains(words),
            "{name}: `{words}` reached the output:\n{text}"
        );
    }
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{name}: a control character reached the output:\n{text:?}"
    );
    assert!(
        text.len() < 20_000,
        "{name}: {} bytes of output",
        text.len()
    );
}

fn run_all(table: &[Case]) {
    for case in table {
        run(case);
    }
}

const DEV: (&str, &str) = ("ENVIRONMENT", "dev");

/// `shipgate.toml`.
#[test]
fn configuration() {
    run_all(&[
        Case {
            name: "a zero [smoke] timeout blames that key and its line",
            config: Some(
                "[smoke]\nbase_url = \"http://127.0.0.1:1\"\ntimeout = \"0s\"\n\n[[smoke.checks]]\nname = \"a\"\npath = \"/\"\n",
            ),
            spec: None,
            args: &["smoke"],
            vars: &[DEV],
            code: 2,
            says: &["shipgate.toml:3: `smoke.timeout`: must be longer than 0s"],
        },
        Case {
            name: "an absurd duration is a configuration error",
            config: Some("[ledger]\nlock_ttl = \"500000000 years\"\n"),
            spec: None,
            args: &["ledger", "list"],
            vars: &[],
            code: 2,
            says: &["ledger.lock_ttl", "longer than 366 days"],
        },
        Case {
            name: "a huge value is quoted as an excerpt",
            config: Some(HUGE_TAG_CONFIG),
            spec: None,
            args: &["deploy", "--dry-run"],
            vars: &[],
            code: 2,
            says: &["image.tag", "more characters)"],
        },
        Case {
            name: "an absurd monitor concurrency",
            config: Some("[monitor]\nconcurrency = 4000000000\n"),
            spec: None,
            args: &["ledger", "list"],
            vars: &[],
            code: 2,
            says: &["monitor.concurrency", "between 1 and 1024"],
        },
        Case {
            name: "a wrong type is named by its kind",
            config: Some("[ledger]\nurl = 12\n"),
            spec: None,
            args: &["ledger", "list"],
            vars: &[],
            code: 2,
            says: &["shipgate.toml:2: `ledger.url`: expected a string, found an integer"],
        },
        Case {
            name: "a wrong type is never quoted (it may be a pasted secret)",
            config: Some("[smoke]\nconcurrency = \"canary-catalogue-3f9a1c\"\n"),
            spec: None,
            args: &["ledger", "list"],
            vars: &[],
            code: 2,
            says: &["`smoke.concurrency`", "found a string"],
        },
        Case {
            name: "a status of the wrong form says which forms exist",
            config: Some("[[smoke.checks]]\nname = \"a\"\npath = \"/\"\nstatus = true\n"),
            spec: None,
            args: &["smoke"],
            vars: &[DEV],
            code: 2,
            says: &["smoke.checks.0.status", "a class (\"2xx\")"],
        },
        Case {
            name: "a ledger file that is not a SQLite database is named at once, no driver noise",
            config: Some("[ledger]\nurl = \"sqlite://spec.toml\"\n"),
            spec: Some("this file is not a database, whatever its name says\n"),
            args: &["ledger", "list"],
            vars: &[],
            code: 2,
            says: &[
                "cannot open the ledger SQLite file spec.toml",
                "not a SQLite database",
            ],
        },
        Case {
            name: "a ledger path that is a directory",
            config: Some("[ledger]\nurl = \"sqlite://.\"\n"),
            spec: None,
            args: &["ledger", "list"],
            vars: &[],
            code: 2,
            says: &["SQLite file .", "is a directory"],
        },
    ]);
}

const HUGE_TAG_CONFIG: &str = concat!(
    "[image]\ntag = \"",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "\"\n"
);

/// Variables: seed names and `SHIPGATE_*`.
#[test]
fn variables() {
    run_all(&[
        Case {
            name: "a table made by a SHIPGATE_ variable names that variable",
            config: None,
            spec: None,
            args: &["ledger", "list"],
            vars: &[("SHIPGATE_TARGETS__LOCAL__SERVICES__API__PORT", "8080")],
            code: 2,
            says: &[
                "environment variable SHIPGATE_TARGETS__LOCAL__SERVICES__API__PORT",
                "SHIPGATE_TARGETS__LOCAL__SERVICES__API__COMMAND",
            ],
        },
        Case {
            name: "a bad ENABLE_ flag names the variable, never the value",
            config: None,
            spec: None,
            args: &["check-env"],
            vars: &[("ENABLE_HELM_DEPLOY", CANARY)],
            code: 2,
            says: &["ENABLE_HELM_DEPLOY"],
        },
        Case {
            name: "an empty required set fails closed",
            config: None,
            spec: None,
            args: &["check-env"],
            vars: &[
                ("ENVIRONMENT", "production"),
                ("PROD_REQUIRED_ENV_VARS", " , "),
            ],
            code: 1,
            says: &["PROD_REQUIRED_ENV_VARS"],
        },
        Case {
            name: "an absurd duration in a SHIPGATE_ variable",
            config: None,
            spec: None,
            args: &["ledger", "list"],
            vars: &[("SHIPGATE_LEDGER__LOCK_TIMEOUT", "500000000 years")],
            code: 2,
            says: &["SHIPGATE_LEDGER__LOCK_TIMEOUT", "longer than 366 days"],
        },
    ]);
}

/// Smoke spec files (`shipgate smoke --spec`).
#[test]
fn smoke_spec() {
    let spec = |name: &'static str, spec: &'static str, says: &'static [&'static str]| Case {
        name,
        config: None,
        spec: Some(spec),
        args: &[
            "smoke",
            "--spec",
            "spec.toml",
            "--url",
            "http://127.0.0.1:1",
        ],
        vars: &[DEV],
        code: 2,
        says,
    };
    run_all(&[
        spec(
            "a check with an empty name",
            "[[checks]]\nname = \"\"\npath = \"/\"\n",
            &["spec.toml:2: `checks.0.name`: a check needs a name"],
        ),
        spec(
            "a header value with a line break is a spec error",
            "[[checks]]\nname = \"a\"\npath = \"/\"\nheaders = { X-A = \"a\\nInjected: 1\" }\n",
            &["`checks.0.headers.X-A`: the value is not a valid header value"],
        ),
        spec(
            "absurd samples",
            "[[checks]]\nname = \"a\"\npath = \"/\"\nsamples = 4000000000\n",
            &["`checks.0.samples`: must be between 1 and 10000"],
        ),
        spec(
            "absurd retry attempts",
            "[[checks]]\nname = \"a\"\npath = \"/\"\nretry = { attempts = 1000000 }\n",
            &["`checks.0.retry.attempts`: must be between 1 and 100"],
        ),
        spec(
            "a status code out of range",
            "[[checks]]\nname = \"a\"\npath = \"/\"\nstatus = 70000\n",
            &["70000 is not an HTTP status code (100-599)"],
        ),
        spec(
            "a list of statuses holding a word",
            "[[checks]]\nname = \"a\"\npath = \"/\"\nstatus = [200, \"ok\"]\n",
            &["a list of statuses holds codes"],
        ),
        spec(
            "an absurd check timeout",
            "[[checks]]\nname = \"a\"\npath = \"/\"\ntimeout = \"500000000 years\"\n",
            &["checks.0.timeout", "longer than 366 days"],
        ),
        spec(
            "a spec with no checks",
            "concurrency = 2\n",
            &["has no checks"],
        ),
    ]);
}

/// The command line.
#[test]
fn command_line() {
    let cli = |name: &'static str,
               args: &'static [&'static str],
               code: i32,
               says: &'static [&'static str]| Case {
        name,
        config: None,
        spec: None,
        args,
        vars: &[DEV],
        code,
        says,
    };
    run_all(&[
        cli("no command prints help", &[], 2, &["Usage: shipgate"]),
        cli(
            "a flag value out of range names the flag",
            &["smoke", "--url", "http://127.0.0.1:1", "--concurrency", "0"],
            2,
            &["flag --concurrency", "between 1 and 256"],
        ),
        cli(
            "a rollback plan for a value that is no tag names --failing",
            &["rollback", "plan", "--failing", "a/b:c@x"],
            2,
            &["--failing", "is invalid"],
        ),
        cli(
            "an unknown target",
            &["deploy", "--dry-run", "--target", "kubernetes"],
            2,
            &["--target", "kubernetes"],
        ),
        cli(
            "an absurd --timeout",
            &[
                "smoke",
                "--url",
                "http://127.0.0.1:1",
                "--timeout",
                "500000000 years",
            ],
            2,
            &["--timeout", "longer than 366 days"],
        ),
    ]);
}

/// Every request the hostile APIs received: (method, path, body).
static RECEIVED: std::sync::Mutex<Vec<(String, String, String)>> =
    std::sync::Mutex::new(Vec::new());

/// A platform API that answers every request with `status` and `body`, in which `{auth}` is
/// replaced by the request's `Authorization` header (echoed, as careless error pages do). It
/// records what it was asked in [`RECEIVED`].
fn hostile_api(status: u16, body: &'static str) -> std::net::SocketAddr {
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let answer = move |method: Method, uri: Uri, headers: HeaderMap, request: String| async move {
        RECEIVED
            .lock()
            .unwrap()
            .push((method.to_string(), uri.path().to_owned(), request));
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            body.replace("{auth}", &auth),
        )
            .into_response()
    };
    shipgate_testkit::serve_on_thread(axum::Router::new().fallback(answer))
}

/// Text that tries to drive the terminal: a line erase, a forged line, a bell and a NUL.
const FORGERY: &str = "\\u001b[2K\\r\\nsmoke passed: all checks\\u0007\\u0000";

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// What platforms answer: errors that echo the token, forge lines or run to megabytes. The
/// deploy stops before anything changes: exit 2 when the answer says the setup is wrong (a
/// refused token, a rejected request), exit 1 when the platform is down; the output stays
/// clean and short either way.
#[test]
fn provider_responses() {
    let railway_config = |status: u16, body: &'static str| {
        leak(format!(
            "app = \"shop\"\n[services.api]\nimage = \"api\"\n[image]\nregistry = \"ghcr.io\"\nowner = \"acme\"\n\
             [targets.railway]\nenabled = true\napi_url = \"http://{}/graphql\"\ntimeout = \"5s\"\n\
             [smoke]\nenabled = false\n[rollback]\nverify_image = false\n",
            hostile_api(status, body)
        ))
    };
    let fly_config = |status: u16, body: &'static str| {
        leak(format!(
            "app = \"shop\"\n[services.api]\nimage = \"api\"\n[image]\nregistry = \"ghcr.io\"\nowner = \"acme\"\n\
             [targets.fly]\nenabled = true\napi_url = \"http://{}\"\nprocess_groups = {{ api = \"app\" }}\ntimeout = \"5s\"\n\
             [smoke]\nenabled = false\n[rollback]\nverify_image = false\n",
            hostile_api(status, body)
        ))
    };
    const RAILWAY: &[(&str, &str)] = &[
        ("ENVIRONMENT", "dev"),
        ("RAILWAY_API_TOKEN", CANARY),
        ("RAILWAY_PROJECT", "shop"),
        ("RAILWAY_ENVIRONMENT", "production"),
        ("RAILWAY_API_SERVICE", "api"),
    ];
    const FLY: &[(&str, &str)] = &[
        ("ENVIRONMENT", "dev"),
        ("FLY_API_TOKEN", CANARY),
        ("FLY_APP", "shop"),
    ];
    let huge: &'static str = leak(format!("{{\"error\": \"{}\"}}", "x".repeat(2_000_000)));
    let forged: &'static str = leak(format!(
        "{{\"errors\": [{{\"message\": \"denied for {{auth}}{FORGERY}\"}}]}}"
    ));
    let fly_forged: &'static str = leak(format!(
        "{{\"error\": \"token {{auth}} refused{FORGERY}\"}}"
    ));
    let deploy = &["deploy", "--image-tag", "1111111"];
    run_all(&[
        Case {
            name: "a Railway GraphQL error that echoes the token and forges a line",
            config: Some(railway_config(200, forged)),
            spec: None,
            args: deploy,
            vars: RAILWAY,
            code: 2,
            says: &["denied for Bearer [redacted]", "\\u{1b}[2K"],
        },
        Case {
            name: "a Railway outage answering two megabytes",
            config: Some(railway_config(502, huge)),
            spec: None,
            args: deploy,
            vars: RAILWAY,
            code: 1,
            says: &["HTTP 502"],
        },
        Case {
            name: "a Fly refusal that echoes the token and forges a line",
            config: Some(fly_config(401, fly_forged)),
            spec: None,
            args: deploy,
            vars: FLY,
            code: 2,
            says: &["refused", "\\u{1b}[2K"],
        },
        Case {
            name: "a Fly answer of two megabytes",
            config: Some(fly_config(400, huge)),
            spec: None,
            args: deploy,
            vars: FLY,
            code: 2,
            says: &["more characters)"],
        },
    ]);
    // Nothing was changed on the platforms: every request was a read (Railway: a GraphQL
    // query, no mutation; Fly: a GET, no lease, update or start).
    let received = RECEIVED.lock().unwrap();
    assert!(!received.is_empty());
    for (method, path, request) in received.iter() {
        let read = match path.as_str() {
            "/graphql" => method == "POST" && !request.contains("mutation"),
            _ => method == "GET",
        };
        assert!(read, "a change was attempted: {method} {path} {request}");
    }
}
