//! `shipgate ci-gate` as a user runs it against a loopback GitHub: exit codes, messages, a
//! token that reaches no output.

#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use shipgate_testkit::Canary;
use shipgate_testkit::fakes::FakeGithub;

const SHA: &str = "ce587453ced02b1526dfb4cb910479d431683101";

struct Fixture {
    _runtime: tokio::runtime::Runtime,
    url: String,
    token: Canary,
}

fn github(checks: &[(&str, &str, u32)]) -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let token = Canary::new("gh-token");
    let gh = FakeGithub::new("acme/backend", token.value());
    for (name, conclusion, after) in checks {
        gh.check(name, conclusion, *after);
    }
    let url = runtime.block_on(gh.start());
    Fixture {
        _runtime: runtime,
        url,
        token,
    }
}

fn gate(fixture: &Fixture, args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .env_clear()
        .env("GITHUB_TOKEN", fixture.token.value())
        .env("GITHUB_API_URL", &fixture.url)
        .env("GITHUB_REPOSITORY", "acme/backend")
        .env("GITHUB_SHA", SHA)
        .env("SHIPGATE_LOG", "debug")
        .arg("ci-gate")
        .args(["--interval", "20ms"])
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    fixture.token.assert_absent("stdout", &stdout);
    fixture.token.assert_absent("stderr", &stderr);
    (output.status.code().unwrap(), stdout, stderr)
}

#[test]
fn passes_waits_and_fails_with_the_documented_exit_codes() {
    let fixture = github(&[
        ("build", "success", 0),
        ("Run Tests (shards 1)", "success", 2),
        ("lint", "failure", 0),
    ]);
    let (code, stdout, stderr) = gate(
        &fixture,
        &["--require", "build", "--require", "Run Tests (shards *)"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ci-gate passed: acme/backend@ce587453ced0"),
        "{stdout}"
    );
    assert!(
        stderr.contains("Run Tests (shards 1): in_progress"),
        "{stderr}"
    );

    let (code, stdout, _) = gate(&fixture, &["--require", "lint"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("FAILED")
            && stdout.contains("lint: failure (https://github.com/acme/backend/runs/3)"),
        "{stdout}"
    );

    let (code, stdout, _) = gate(
        &fixture,
        &["--require", "deploy-check", "--timeout", "300ms", "-q"],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("TIMED_OUT") && stdout.contains("deploy-check: not reported yet"),
        "{stdout}"
    );
}

#[test]
fn bad_input_is_a_usage_error() {
    let fixture = github(&[]);
    let (code, _, stderr) = gate(&fixture, &["--sha", "ce58745"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("not a full 40-character commit SHA"),
        "{stderr}"
    );
    let (code, _, stderr) = gate(&fixture, &["--repo", "backend"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not OWNER/NAME"), "{stderr}");
    let (code, _, stderr) = gate(&fixture, &["--repo", "acme/other"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("(404)"), "{stderr}");
}

#[test]
fn in_github_actions_a_failure_is_annotated() {
    let fixture = github(&[("lint", "failure", 0)]);
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .env_clear()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", fixture.token.value())
        .env("GITHUB_API_URL", &fixture.url)
        .env("GITHUB_REPOSITORY", "acme/backend")
        .env("GITHUB_SHA", SHA)
        .args(["ci-gate", "--require", "lint", "-q"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1));
    // The runner is first told to mask the token, then gets the annotation.
    let (mask, rest) = stdout.split_once('\n').unwrap();
    assert_eq!(mask, format!("::add-mask::{}", fixture.token.value()));
    assert!(
        rest.starts_with("::error title=shipgate ci-gate failed::lint: failure (https://github.com/acme/backend/runs/1)\n"),
        "{stdout}"
    );
    fixture
        .token
        .assert_absent("stdout after the mask command", rest);
}
