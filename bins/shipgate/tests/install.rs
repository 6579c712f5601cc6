//! What an installed binary offers beyond the commands: `--version` with the commit it was
//! built from, shell completions for every shell clap knows, and man pages.

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
