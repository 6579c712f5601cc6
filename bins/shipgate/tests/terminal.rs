//! Progress as people see it: on a terminal (a pseudo-terminal from util-linux `script`), the
//! deploy's waits rewrite one live line and outcomes are coloured; under `NO_COLOR`, in CI or
//! in a pipe, plain lines without a single escape sequence.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// The demo deployed once (v1) in a fresh directory, its stderr and stdout as captured.
fn deploy_demo(dir: &Path, terminal: bool, env: &[(&str, &str)]) -> String {
    let port = shipgate_testkit::closed_port().port();
    let config = dir.join("shipgate.toml");
    std::fs::write(
        &config,
        shipgate_testkit::demo_config(&dir.join("state"), port),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_shipgate");
    let line = format!(
        "{exe} deploy --image-tag v1 --config {} --summary {}",
        config.display(),
        dir.join("summary.json").display()
    );
    let mut command = if terminal {
        // `script` runs the command on a pseudo-terminal and copies what it wrote.
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &line]);
        c
    };
    let output = command
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TERM", "xterm-256color")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let stop = Command::new(exe)
        .current_dir(dir)
        .env_clear()
        .args(["local", "stop", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(stop.status.success());
    assert!(output.status.success(), "{out}");
    out
}

#[test]
fn a_terminal_gets_a_live_line_and_colour_and_everything_else_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = deploy_demo(dir.path(), true, &[]);
    assert!(
        out.contains("\r\x1b[2K"),
        "the wait rewrites one line: {out:?}"
    );
    assert!(
        out.contains("\x1b[32mdeploy: local: revision 1 is live and healthy\x1b[0m"),
        "the healthy verdict in green: {out:?}"
    );
    assert!(out.contains("succeeded"), "{out:?}");

    for (terminal, env) in [
        (true, vec![("NO_COLOR", "1")]),
        (true, vec![("CI", "true")]),
        (true, vec![("TERM", "dumb")]),
        (false, vec![]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = deploy_demo(dir.path(), terminal, &env);
        assert!(
            !out.contains('\x1b'),
            "no escape sequence (terminal {terminal}, {env:?}): {out:?}"
        );
        assert!(
            out.contains("deploy: local: revision 1 is live and healthy\n")
                || out.contains("deploy: local: revision 1 is live and healthy\r\n"),
            "{out:?}"
        );
    }
}
