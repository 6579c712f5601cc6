//! What an installed binary offers beyond the commands: `--version` with the commit it was
//! built from, shell completions for every shell clap knows, man pages, and the local
//! provider's helpers inside the one binary.

#![allow(clippy::unwrap_used)]

use assert_cmd::Command;

fn shipgate(args: &[&str]) -> (i32, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .env_clear()
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let (code, version) = shipgate(&["--version"]);
    assert_eq!(code, 0);
    let expected = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    match expected {
        // A checkout: the commit it is built from.
        Some(commit) => assert_eq!(
            version,
            format!("shipgate {} ({commit})\n", env!("CARGO_PKG_VERSION"))
        ),
        None => assert!(version.starts_with("shipgate "), "{version}"),
    }
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, script) = shipgate(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        for command in ["deploy", "check-env", "dashboard", "rollback", "monitor"] {
            assert!(
                script.contains(command),
                "{shell} completions lack {command}"
            );
        }
    }
    let (code, _) = shipgate(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error");
}

#[test]
fn man_pages_describe_shipgate_and_each_command() {
    let (code, page) = shipgate(&["man"]);
    assert_eq!(code, 0);
    assert!(page.contains(".TH shipgate 1"), "{page}");
    assert!(page.contains("dashboard"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = shipgate(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    for page in [
        "shipgate.1",
        "shipgate-deploy.1",
        "shipgate-dashboard.1",
        "shipgate-ledger-show.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.starts_with(".ie"), "{page}: {text}");
    }
}

/// `cargo install` puts one executable on the PATH: the local provider's router and the demo
/// service must come from it. The binary alone, copied into an empty directory, deploys the
/// demo (v1, then a broken v2 that is rolled back), and what the users' port serves is read
/// back each time.
#[test]
fn the_binary_alone_runs_the_local_provider_and_the_demo_service() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("shipgate");
    std::fs::copy(env!("CARGO_BIN_EXE_shipgate"), &exe).unwrap();
    assert_eq!(
        std::fs::read_dir(&bin).unwrap().count(),
        1,
        "nothing beside it"
    );
    let port = shipgate_testkit::closed_port().port();
    let config = dir.path().join("shipgate.toml");
    std::fs::write(
        &config,
        shipgate_testkit::demo_config(&dir.path().join("state"), port),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(&exe)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let serves = || {
        shipgate_testkit::http_get(&format!("http://127.0.0.1:{port}/version"), None)
            .unwrap_or_default()
    };
    let (code, out) = run(&["deploy", "--image-tag", "v1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(serves(), (200, "v1".to_owned()));
    let (code, out) = run(&["deploy", "--image-tag", "v2-broken"]);
    assert_eq!(code, 3, "rolled back: {out}");
    assert_eq!(
        serves(),
        (200, "v1".to_owned()),
        "the users' port serves v1 again: {out}"
    );
    let (code, out) = run(&["local", "stop"]);
    assert_eq!(code, 0, "{out}");
    let routers = std::process::Command::new("pgrep")
        .args(["-f", &format!("{} local-router", exe.display())])
        .output()
        .unwrap();
    assert!(routers.stdout.is_empty(), "the router was stopped");
}
