//! The versioned outputs, pinned with insta snapshots: the deploy summary JSON, the smoke JSON
//! and JUnit reports, `monitor --once` JSON, `ledger list/show` JSON, `report` JSON, and the
//! `--help` of every command. A change to any of them shows up as a snapshot diff to review
//! (and a schema_version to bump when a machine could notice). What varies from run to run
//! (times, run ids, ports, paths, the host) is replaced by a placeholder first.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

/// A fresh copy of the demo (local provider, SQLite ledger) with a monitor target.
struct Demo {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let port = shipgate_testkit::closed_port().port();
        let mut text = shipgate_testkit::demo_config(&dir.path().join("state"), port);
        text.push_str(&format!(
            "\n[[monitor.targets]]\nname = \"api\"\nschedule = \"1m\"\nurl = \"http://127.0.0.1:{port}/healthz\"\n"
        ));
        let config = dir.path().join("shipgate.toml");
        std::fs::write(&config, text).unwrap();
        Demo { dir, config, port }
    }

    /// Runs shipgate with the demo's configuration (when `with_config`); returns (exit code,
    /// stdout).
    fn run(&self, args: &[&str], with_config: bool) -> (i32, String) {
        let mut command = Command::cargo_bin("shipgate").unwrap();
        command
            .current_dir(self.dir.path())
            .env_clear()
            .env("ENVIRONMENT", "dev")
            .args(args);
        if with_config {
            command.arg("--config").arg(&self.config);
        }
        let output = command.output().unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
        )
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Text with what varies between runs replaced: this demo's directory and port, run ids,
    /// JUnit times.
    fn stable(&self, text: &str) -> String {
        let text = text
            .replace(&self.dir.path().display().to_string(), "[dir]")
            .replace(&self.port.to_string(), "[port]");
        let run_id = regex::Regex::new(r"\d{8}T\d{6}Z-[0-9a-f]{6}").unwrap();
        let text = run_id.replace_all(&text, "[run]");
        // JUnit times and timestamps.
        let times = regex::Regex::new(r#"(time|timestamp)="[^"]*""#).unwrap();
        times.replace_all(&text, r#"$1="[t]""#).into_owned()
    }

    /// JSON with what varies replaced: the numbers of every `*_ms` key, the host, and the
    /// strings as [`Demo::stable`].
    fn stable_json(&self, text: &str) -> Value {
        fn walk(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    for (key, v) in map.iter_mut() {
                        if key.ends_with("_ms") {
                            blur(v);
                        } else if key == "host" {
                            *v = Value::String("[host]".into());
                        } else {
                            walk(v);
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(walk),
                _ => {}
            }
        }
        /// Every number in `value` becomes `[ms]` (a latency list keeps its length).
        fn blur(value: &mut Value) {
            match value {
                Value::Number(_) => *value = Value::String("[ms]".into()),
                Value::Array(items) => items.iter_mut().for_each(blur),
                _ => {}
            }
        }
        let mut value: Value = serde_json::from_str(&self.stable(text)).unwrap();
        walk(&mut value);
        value
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.run(&["local", "stop"], true);
    }
}

#[test]
fn the_versioned_outputs_are_pinned() {
    let demo = Demo::new();
    let (code, _) = demo.run(
        &[
            "deploy",
            "-q",
            "--image-tag",
            "v1",
            "--summary",
            &demo.path("v1.json"),
        ],
        true,
    );
    assert_eq!(code, 0);
    let (code, _) = demo.run(
        &[
            "deploy",
            "-q",
            "--image-tag",
            "v2-broken",
            "--summary",
            &demo.path("v2.json"),
        ],
        true,
    );
    assert_eq!(code, 3);
    let read = |name: &str| std::fs::read_to_string(demo.path(name)).unwrap();
    insta::assert_json_snapshot!(
        "deploy_summary_succeeded",
        demo.stable_json(&read("v1.json"))
    );
    insta::assert_json_snapshot!(
        "deploy_summary_rolled_back",
        demo.stable_json(&read("v2.json"))
    );

    let (code, list) = demo.run(&["ledger", "list", "--format", "json"], true);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("ledger_list", demo.stable_json(&list));
    let run_id = serde_json::from_str::<Value>(&read("v2.json")).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, show) = demo.run(&["ledger", "show", &run_id, "--format", "json"], true);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("ledger_show", demo.stable_json(&show));

    let (code, report) = demo.run(&["report", "--format", "json"], true);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("report", demo.stable_json(&report));

    let (code, monitor) = demo.run(&["monitor", "--once", "--format", "json"], true);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("monitor_once", demo.stable_json(&monitor));

    let url = format!("http://127.0.0.1:{}", demo.port);
    let (code, _) = demo.run(
        &[
            "smoke",
            "--url",
            &url,
            "--check",
            "/healthz",
            "--check",
            "/api/orders",
            "--report-json",
            &demo.path("smoke.json"),
            "--report-junit",
            &demo.path("smoke.xml"),
        ],
        false,
    );
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("smoke_report", demo.stable_json(&read("smoke.json")));
    insta::assert_snapshot!("smoke_junit", demo.stable(&read("smoke.xml")));
}

#[test]
fn every_command_help_is_pinned() {
    let commands: &[&[&str]] = &[
        &[],
        &["check-env"],
        &["smoke"],
        &["secrets", "check"],
        &["deploy"],
        &["plan"],
        &["ledger", "list"],
        &["ledger", "show"],
        &["lock", "status"],
        &["lock", "release"],
        &["report"],
        &["monitor"],
        &["dashboard"],
        &["completions"],
        &["man"],
        &["notify", "deliver"],
        &["rollback", "plan"],
        &["local", "stop"],
        &["local", "status"],
        &["ci-gate"],
    ];
    for command in commands {
        let output = Command::cargo_bin("shipgate")
            .unwrap()
            .env_clear()
            .env("COLUMNS", "100")
            .args(*command)
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{command:?}");
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help_{}", command.join("_"))
        };
        insta::assert_snapshot!(name, String::from_utf8(output.stdout).unwrap());
    }
}
