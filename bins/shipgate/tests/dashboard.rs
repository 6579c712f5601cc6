//! `shipgate dashboard` as a user runs it: it refuses to show the ledger on a non-loopback
//! address without an access rule, refuses a weak token, serves behind a token taken from
//! the secret sources, and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("shipgate.toml");
    std::fs::write(
        &path,
        format!(
            "app = \"shop\"\nenvironment = \"staging\"\n[ledger]\nurl = \"sqlite://{}/ledger.db\"\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    path
}

fn dashboard(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .env_clear()
        .envs(env.iter().copied())
        .arg("dashboard")
        .arg("--config")
        .arg(config)
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn get(url: &str, token: Option<&str>) -> Option<(u16, String)> {
    shipgate_testkit::http_get(url, token)
}

#[test]
fn it_refuses_a_non_loopback_address_without_an_access_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (code, stderr) = dashboard(&config, &["--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("would serve the ledger to anyone who can reach 0.0.0.0")
            && stderr.contains("[dashboard]")
            && stderr.contains("token"),
        "{stderr}"
    );
}

#[test]
fn it_refuses_a_short_token_and_a_rule_without_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[dashboard]\ntoken = \"DASHBOARD_TOKEN\"\n");
    let (code, stderr) = dashboard(&config, &[], &[("DASHBOARD_TOKEN", "k3y-9chrs")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("shorter than 16 characters"), "{stderr}");
    assert!(
        !stderr.contains("k3y-9chrs"),
        "the token is never shown: {stderr}"
    );
    let (code, stderr) = dashboard(&config, &[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs secret DASHBOARD_TOKEN"), "{stderr}");
}

#[test]
fn the_kubernetes_example_serves_behind_its_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = shipgate_testkit::closed_port().port();
    // fixtures/dashboard/shipgate.toml as the Kubernetes example runs it, with the ledger
    // and the address overridden by the environment as the Secret does there.
    let config =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dashboard/shipgate.toml");
    let token = "d4shb0ard-t0ken-for-tests";
    let mut child: Child = Process::new(assert_cmd::cargo::cargo_bin("shipgate"))
        .env_clear()
        .env("DASHBOARD_TOKEN", token)
        .env(
            "SHIPGATE_LEDGER__URL",
            format!("sqlite://{}/ledger.db", dir.path().display()),
        )
        .env("SHIPGATE_DASHBOARD__LISTEN", format!("127.0.0.1:{port}"))
        .arg("dashboard")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        assert!(
            Instant::now() < deadline,
            "the dashboard did not answer within 30 s"
        );
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "the dashboard exited: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
        if let Some(answer) = get(&url, None) {
            break answer;
        }
    };
    assert_eq!(refused.0, 401, "{}", refused.1);
    let (status, page) = get(&url, Some(token)).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("The ledger has no run yet"), "{page}");
    let (status, api) = get(&format!("{url}api/overview"), Some(token)).unwrap();
    assert_eq!(status, 200);
    assert!(api.contains("\"schema_version\":1"), "{api}");
    let status = Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("dashboard on http://127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("dashboard stopped"), "{stderr}");
    assert!(!stderr.contains(token), "{stderr}");
}
