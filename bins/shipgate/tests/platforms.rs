//! `shipgate deploy` to Railway and Fly.io, end to end against the loopback platform fakes
//! (each checked against the platform's real API description): a good release goes live on
//! every service; a release the platform never reports healthy fails with the previous one
//! still serving (exit 1); a release that is up but fails the smoke gate is rolled back
//! (exit 3); the platform token (a canary) reaches no output or summary.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use assert_cmd::Command;
use shipgate_testkit::fly::FakeFly;
use shipgate_testkit::railway::{FakeRailway, FakeToken};
use shipgate_testkit::{Canary, runtime};

fn deploy(dir: &Path, env: &[(&str, &str)], tag: &str, canary: &Canary) -> (i32, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .args(["deploy", "--image-tag", tag, "--summary"])
        .arg(dir.join("summary.json"))
        .arg("--config")
        .arg(dir.join("shipgate.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    canary.assert_absent("stdout", &stdout);
    canary.assert_absent("stderr", &stderr);
    canary.assert_absent(
        "summary",
        &std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default(),
    );
    (output.status.code().unwrap(), format!("{stdout}{stderr}"))
}

/// A config with a smoke gate against `smoke`, which fails while a `broken` tag is live.
fn config(dir: &Path, services: &str, target: &str, smoke: std::net::SocketAddr) {
    std::fs::write(
        dir.join("shipgate.toml"),
        format!(
            "app = \"shop\"\nenvironment = \"dev\"\n[image]\nregistry = \"ghcr.io\"\nowner = \"acme\"\n{services}\n{target}\n\
             [smoke]\nenabled = true\nbase_url = \"http://{smoke}\"\nallow_insecure = true\n\
             [[smoke.checks]]\nname = \"health\"\npath = \"/healthz\"\nstatus = 200\n\
             [rollback]\nauto = true\nverify_image = false\n[ledger]\nurl = \"sqlite://{}\"\n",
            dir.join("ledger.db").display()
        ),
    )
    .unwrap();
}

/// A health endpoint that answers 500 while `live()` names a `broken` image.
fn smoke_server(
    rt: &tokio::runtime::Runtime,
    live: impl Fn() -> String + Clone + Send + Sync + 'static,
) -> std::net::SocketAddr {
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let live = live.clone();
            async move {
                if live().contains("broken") {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    rt.block_on(shipgate_testkit::serve(app))
}

#[test]
fn railway_deploys_each_service_and_rolls_back_a_release_failing_its_smoke_gate() {
    let canary = Canary::new("railway-token");
    let rt = runtime();
    let fake = FakeRailway::new(FakeToken::Account(canary.value().to_owned()));
    let url = rt.block_on(fake.clone().start());
    let live = fake.clone();
    let smoke = smoke_server(&rt, move || {
        live.live_image("env-prod", "svc-api").unwrap_or_default()
    });
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        "[services.api]\nimage = \"api\"\norder = 1\n[services.worker]\nimage = \"worker\"\norder = 2",
        &format!(
            "[targets.railway]\nenabled = true\napi_url = \"{url}\"\ntimeout = \"20s\"\npoll_interval = \"100ms\"\nstable_for = \"300ms\""
        ),
        smoke,
    );
    let env = [
        ("RAILWAY_API_TOKEN", canary.value()),
        ("RAILWAY_PROJECT", "shop"),
        ("RAILWAY_WORKSPACE", "Acme"),
        ("RAILWAY_ENVIRONMENT", "production"),
        ("RAILWAY_API_SERVICE", "api"),
        ("RAILWAY_WORKER_SERVICE", "worker"),
    ];
    let (code, out) = deploy(dir.path(), &env, "1111111", &canary);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("railway:api") && out.contains("railway:worker"),
        "{out}"
    );

    let (code, out) = deploy(dir.path(), &env, "unhealthy-2", &canary);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("crashed after starting")
            && out.contains(
                "read back, the previous release still serves there (api=ghcr.io/acme/api:1111111)"
            ),
        "{out}"
    );

    let (code, out) = deploy(dir.path(), &env, "broken-3", &canary);
    assert_eq!(
        code, 3,
        "a release failing its smoke gate is rolled back: {out}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "rolled_back", "{summary}");
    assert!(fake.calls().iter().any(|(op, _)| op == "Rollback"));
    assert_eq!(fake.violations(), Vec::<String>::new());

    // Both token kinds set is a usage error naming both, before anything changes.
    let mut both = env.to_vec();
    both.push(("RAILWAY_TOKEN", "project-token"));
    let (code, out) = deploy(dir.path(), &both, "3333333", &canary);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("RAILWAY_TOKEN") && out.contains("RAILWAY_API_TOKEN"),
        "{out}"
    );
}

/// Railway failures that used to be reported from assumptions: a deployment that crashes
/// right after SUCCESS (the run exited 0 with the gate off) and one that crashed after
/// replacing the live deployment (the run said the previous release still served). Read back,
/// nothing runs: both are rolled back (exit 3) and the service's source names the good image.
#[test]
fn railway_crashes_after_success_or_after_replacing_the_live_release_are_rolled_back() {
    let canary = Canary::new("railway-token");
    let rt = runtime();
    let fake = FakeRailway::new(FakeToken::Account(canary.value().to_owned()));
    let url = rt.block_on(fake.clone().start());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shipgate.toml"),
        format!(
            "app = \"shop\"\nenvironment = \"dev\"\n[image]\nregistry = \"ghcr.io\"\nowner = \"acme\"\n\
             [services.api]\nimage = \"api\"\n\
             [targets.railway]\nenabled = true\napi_url = \"{url}\"\ntimeout = \"20s\"\npoll_interval = \"100ms\"\nstable_for = \"300ms\"\n\
             [smoke]\nenabled = false\n[rollback]\nauto = true\nverify_image = false\n[ledger]\nurl = \"sqlite://{}\"\n",
            dir.path().join("ledger.db").display()
        ),
    )
    .unwrap();
    let env = [
        ("RAILWAY_API_TOKEN", canary.value()),
        ("RAILWAY_PROJECT", "shop"),
        ("RAILWAY_WORKSPACE", "Acme"),
        ("RAILWAY_ENVIRONMENT", "production"),
        ("RAILWAY_API_SERVICE", "api"),
    ];
    let (code, out) = deploy(dir.path(), &env, "1111111", &canary);
    assert_eq!(code, 0, "{out}");
    for tag in ["crash-after-success-2", "crash-replacing-3"] {
        let (code, out) = deploy(dir.path(), &env, tag, &canary);
        assert_eq!(code, 3, "{tag}: {out}");
        assert!(
            out.contains("read back, it runs api=nothing"),
            "{tag}: {out}"
        );
        assert_eq!(
            fake.live_image("env-prod", "svc-api").as_deref(),
            Some("ghcr.io/acme/api:1111111"),
            "{tag}: {out}"
        );
        assert_eq!(
            fake.source_image("env-prod", "svc-api").as_deref(),
            Some("ghcr.io/acme/api:1111111"),
            "{tag}: the service's source was restored"
        );
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["targets"][0]["verdict"], "failed", "{summary:#}");
        assert_eq!(
            summary["rollback"]["targets"][0]["read_back"]["api"], "ghcr.io/acme/api:1111111",
            "{summary:#}"
        );
        assert!(
            summary["message"]
                .as_str()
                .unwrap()
                .contains("not smoke-tested: there is no smoke gate"),
            "{summary:#}"
        );
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[test]
fn fly_rolls_machines_forward_restores_failures_and_rolls_back_on_smoke() {
    let canary = Canary::new("fly-token");
    let token = format!("FlyV1 fm2_{}", canary.value());
    let rt = runtime();
    let fake = FakeFly::new("shop", &token);
    fake.machines("app", 2, "ghcr.io/acme/api:0000000");
    let url = rt.block_on(fake.clone().start());
    let live = fake.clone();
    let smoke = smoke_server(&rt, move || live.images("app").join(","));
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        "[services.api]\nimage = \"api\"",
        &format!(
            "[targets.fly]\nenabled = true\napi_url = \"{url}\"\nprocess_groups = {{ api = \"app\" }}\ntimeout = \"4s\""
        ),
        smoke,
    );
    let env = [("FLY_API_TOKEN", token.as_str()), ("FLY_APP", "shop")];
    let (code, out) = deploy(dir.path(), &env, "1111111", &canary);
    assert_eq!(code, 0, "{out}");
    assert_eq!(fake.images("app"), vec!["ghcr.io/acme/api:1111111"; 2]);

    let (code, out) = deploy(dir.path(), &env, "unhealthy-2", &canary);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("restored to their previous configuration"),
        "{out}"
    );
    assert_eq!(fake.images("app"), vec!["ghcr.io/acme/api:1111111"; 2]);

    let (code, out) = deploy(dir.path(), &env, "broken-3", &canary);
    assert_eq!(code, 3, "{out}");
    assert_eq!(fake.images("app"), vec!["ghcr.io/acme/api:1111111"; 2]);
    assert_eq!(fake.leases_held(), 0);
    assert_eq!(fake.violations(), Vec::<String>::new());

    // An app without machines in the group: a usage error, nothing changed.
    let env = [("FLY_API_TOKEN", token.as_str()), ("FLY_APP", "other")];
    let (code, out) = deploy(dir.path(), &env, "3333333", &canary);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no Fly app `other`"), "{out}");
}

#[test]
fn fly_bluegreen_tests_green_machines_before_traffic_and_leaves_no_orphan() {
    let canary = Canary::new("fly-token");
    let token = format!("FlyV1 fm2_{}", canary.value());
    let rt = runtime();
    let fake = FakeFly::new("shop", &token);
    fake.machines("app", 2, "ghcr.io/acme/api:0000000");
    let url = rt.block_on(fake.clone().start());
    // What users reach: the machines the proxy routes to.
    let serving = fake.clone();
    let public = smoke_server(&rt, move || serving.serving("app").join(","));
    // One machine reached directly (the private network in production): here every machine
    // answers as the newest image present does, which is the staged green one.
    let present = fake.clone();
    let direct = smoke_server(&rt, move || present.images("app").join(","));
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        "[services.api]\nimage = \"api\"",
        &format!(
            "[deploy]\nstrategy = \"bluegreen\"\n\
             [targets.fly]\nenabled = true\napi_url = \"{url}\"\nprocess_groups = {{ api = \"app\" }}\ntimeout = \"4s\"\nstaged_url = \"http://{direct}\""
        ),
        public,
    );
    let env = [("FLY_API_TOKEN", token.as_str()), ("FLY_APP", "shop")];
    let (code, out) = deploy(dir.path(), &env, "1111111", &canary);
    assert_eq!(code, 0, "{out}");
    assert_eq!(fake.serving("app"), vec!["ghcr.io/acme/api:1111111"; 2]);
    assert_eq!(fake.present("app"), 2, "the blue machines were destroyed");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["strategy"], "bluegreen");
    assert_eq!(summary["smoke_before_traffic"]["passed"], true);

    // A release failing its smoke spec: caught on the green machines, destroyed; users never
    // left the machines of 1111111.
    let (code, out) = deploy(dir.path(), &env, "broken-3", &canary);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no user request reached it"), "{out}");
    assert_eq!(fake.serving("app"), vec!["ghcr.io/acme/api:1111111"; 2]);
    assert_eq!(fake.present("app"), 2);
    assert_eq!(fake.leases_held(), 0);
    assert_eq!(fake.violations(), Vec::<String>::new());
}
