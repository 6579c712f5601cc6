//! `shipgate deploy` as a user runs it: the demo story (good release, then a broken one that
//! is rolled back), the summary file, the ledger, dry runs, usage errors, and a canary API key
//! that reaches no output, summary or ledger row.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use shipgate_testkit::Canary;

struct Demo {
    dir: tempfile::TempDir,
    config: PathBuf,
    canary: Canary,
    /// The demo service's stable port.
    port: u16,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let port = shipgate_testkit::closed_port().port();
        let text = shipgate_testkit::demo_config(&dir.path().join("state"), port);
        let config = dir.path().join("shipgate.toml");
        std::fs::write(&config, text).unwrap();
        Demo {
            dir,
            config,
            canary: Canary::new("smoke-key"),
            port,
        }
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let output = Command::cargo_bin("shipgate")
            .unwrap()
            .current_dir(self.dir.path())
            .env_clear()
            .env("PRODUCTION_API_KEY", self.canary.value())
            .env("SHIPGATE_LOG", "debug")
            .envs(env.iter().copied())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        );
        self.canary.assert_absent("stdout", &stdout);
        self.canary.assert_absent("stderr", &stderr);
        (output.status.code().unwrap(), stdout, stderr)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.run(&["local", "stop"]);
    }
}

#[test]
fn the_demo_story_good_release_then_a_broken_one_rolled_back() {
    let demo = Demo::new();
    let summary = |name: &str| demo.dir.path().join(name).display().to_string();

    // v1 is deployed by the workflow of a push whose commit was made an hour ago (GitHub's
    // push payload): the report's lead time for changes comes from it.
    let sha = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3_600;
    let committed = chrono::DateTime::from_timestamp(i64::try_from(an_hour_ago).unwrap(), 0)
        .unwrap()
        .to_rfc3339();
    let event = demo.dir.path().join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({"head_commit": {"id": sha, "timestamp": committed}}).to_string(),
    )
    .unwrap();
    let event = event.display().to_string();
    let (code, stdout, stderr) = demo.run_with(
        &[
            "deploy",
            "--image-tag",
            "v1",
            "--summary",
            &summary("v1.json"),
        ],
        &[("GITHUB_EVENT_PATH", &event), ("GITHUB_SHA", sha)],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("deploy succeeded: v1 is live on local and passed the smoke gate"),
        "{stdout}"
    );
    assert!(
        stderr.contains("local: revision 1 is live and healthy"),
        "{stderr}"
    );

    let (code, stdout, stderr) = demo.run(&[
        "deploy",
        "--image-tag",
        "v2-broken",
        "--summary",
        &summary("v2.json"),
    ]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("smoke                  failed")
            && stdout.contains("orders: status 500 (expected 200)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("local: rolling back to revision 1"),
        "{stderr}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary("v2.json")).unwrap()).unwrap();
    assert_eq!(
        (
            json["schema_version"].as_u64(),
            json["outcome"].as_str(),
            json["exit_code"].as_u64()
        ),
        (Some(1), Some("rolled_back"), Some(3))
    );
    assert_eq!(json["rollback"]["smoke"]["passed"], true);
    for file in ["v1.json", "v2.json"] {
        demo.canary
            .assert_absent(file, &std::fs::read_to_string(summary(file)).unwrap());
    }
    let ledger = std::fs::read(demo.dir.path().join("state/ledger.db")).unwrap();
    demo.canary
        .assert_absent("the ledger", &String::from_utf8_lossy(&ledger));

    let (code, stdout, _) = demo.run(&["ledger", "list", "--format", "json"]);
    assert_eq!(code, 0);
    let runs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rolled_back", "succeeded"]);
    let id = runs[0]["id"].as_str().unwrap();
    let (code, stdout, _) = demo.run(&["ledger", "show", id]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("rollback local api: demo/api:v2-broken → demo/api:v1"),
        "{stdout}"
    );

    let (code, stdout, _) = demo.run(&["deploy", "--image-tag", "v3", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("api: demo/api:v1 → demo/api:v3") && stdout.contains("nothing changed"),
        "{stdout}"
    );
    // `shipgate plan` is the same dry run.
    let (code, planned, _) = demo.run(&["plan", "--image-tag", "v3"]);
    assert_eq!((code, planned), (0, stdout));

    let (code, stdout, _) = demo.run(&["local", "status"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("api: demo/api:v1 (revision 3)"),
        "{stdout}"
    );
    // The delivery report over both runs: one deployment, one change failure restored by
    // its own rollback.
    let (code, stdout, _) = demo.run(&["report", "--since", "1d", "--format", "json"]);
    assert_eq!(code, 0, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let staging = &report["environments"][0];
    assert_eq!(
        (staging["app"].as_str(), staging["environment"].as_str()),
        (Some("demo"), Some("staging"))
    );
    assert_eq!(
        (
            staging["attempts"].as_u64(),
            staging["deployments"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(staging["change_failure_rate"].as_f64(), Some(0.5));
    assert!(staging["mean_time_to_restore_ms"].as_f64().unwrap() > 0.0);
    // Commit to live: the hour since the commit plus the run (seconds).
    let lead = staging["lead_time_ms"].as_f64().unwrap();
    assert!((3_600_000.0..3_900_000.0).contains(&lead), "{lead}");
    let (code, stdout, _) = demo.run(&["report", "--since", "1d"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("| demo | staging |"), "{stdout}");
    let (code, _, stderr) = demo.run(&["report", "--since", "soon"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--since `soon`"), "{stderr}");

    let (code, stdout, _) = demo.run(&["lock", "status"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("no deploy lock on demo/staging"),
        "{stdout}"
    );
}

#[test]
fn usage_errors_change_nothing_and_exit_2() {
    let demo = Demo::new();
    let (code, _, stderr) = demo.run(&["deploy"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no image tag"), "{stderr}");

    let (code, _, stderr) = demo.run(&["deploy", "--image-tag", "latest"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("mutable tag in production-like environment staging"),
        "{stderr}"
    );

    let (code, _, stderr) = demo.run(&["deploy", "--image-tag", "v1", "--target", "fly"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("[targets.fly] needs the app"), "{stderr}");

    let (code, _, stderr) = demo.run(&["deploy", "--image-tag", "v1", "--target", "helm"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("[targets.helm] needs `chart`"), "{stderr}");

    let (code, _, stderr) = demo.run(&["deploy", "--image-tag", "v1", "--target", "kubernetes"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--target: `kubernetes` is not a target"),
        "{stderr}"
    );
    assert!(
        !demo.dir.path().join("state/ledger.db").exists(),
        "nothing was recorded"
    );
}

#[test]
fn a_helm_deploy_sets_each_image_tag_and_passes_the_decoded_kubeconfig() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake");
    std::fs::create_dir_all(fake.join("chart")).unwrap();
    std::fs::write(
        fake.join("chart/values.yaml"),
        "api:\n  image:\n    tag: \"0\"\nworker:\n  image:\n    tag: \"0\"\n",
    )
    .unwrap();
    std::fs::write(fake.join("version"), "v4.1.4").unwrap();
    let helm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/shipgate-helm/tests/fake-helm");
    let config = dir.path().join("shipgate.toml");
    std::fs::write(
        &config,
        format!(
            "app = \"provenance\"\nenvironment = \"production\"\n[image]\nregistry = \"ghcr.io\"\nowner = \"acme\"\n\
             [services.api]\nimage = \"provenance-api\"\norder = 1\n[services.worker]\nimage = \"provenance-worker\"\norder = 2\n\
             [targets.helm]\nenabled = true\nchart = \"{}\"\nhelm_bin = \"{}\"\nimage_tag_paths = {{ api = \"api.image.tag\", worker = \"worker.image.tag\" }}\n\
             [migrate]\ncommand = [\"./bin/migrate\", \"up\", \"{{tag}}\"]\n[migrate.kubernetes]\nenv_from_secret = \"provenance-db\"\n\
             [ledger]\nurl = \"sqlite://{}\"\n",
            fake.join("chart").display(),
            helm.display(),
            dir.path().join("ledger.db").display()
        ),
    )
    .unwrap();
    // The Kubernetes API the rollout check reads: empty, so the rollout is done.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let kube = shipgate_testkit::fakes::FakeKube::new("token");
    let api = runtime.block_on(kube.clone().start());
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .encode(shipgate_testkit::fakes::FakeKube::kubeconfig(api, "token"));
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir.path())
        .env_clear()
        .env("FAKE_HELM_DIR", &fake)
        .env("KUBE_CONFIG_DATA", kubeconfig)
        .args(["deploy", "--image-tag", "3f2c1a9", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("deploy succeeded: 3f2c1a9 is live on helm"),
        "{stdout}"
    );
    let argv = std::fs::read_to_string(fake.join("argv.log")).unwrap();
    let upgrade = argv.lines().find(|l| l.starts_with("upgrade")).unwrap();
    assert!(
        upgrade.contains("upgrade --install provenance"),
        "{upgrade}"
    );
    assert!(upgrade.contains("--namespace provenance"), "{upgrade}");
    assert!(
        upgrade
            .contains("--set-string api.image.tag=3f2c1a9 --set-string worker.image.tag=3f2c1a9"),
        "{upgrade}"
    );
    assert!(upgrade.contains("--kubeconfig "), "{upgrade}");
    // The migration ran first, as a Job in the release's namespace with the new image.
    let jobs = kube.jobs.lock().unwrap();
    let (key, job) = jobs.iter().next().expect("a migration Job was created");
    assert_eq!(key.0, "provenance");
    assert!(key.1.starts_with("provenance-migrate-"), "{}", key.1);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "ghcr.io/acme/provenance-api:3f2c1a9");
    assert_eq!(
        container["command"],
        serde_json::json!(["./bin/migrate", "up", "3f2c1a9"])
    );
    assert!(stdout.contains("migrate"), "{stdout}");
}

#[test]
fn a_deploy_killed_with_sigkill_is_recovered_by_the_next_one() {
    let demo = Demo::new();
    let (code, ..) = demo.run(&["deploy", "--image-tag", "v1"]);
    assert_eq!(code, 0);

    // kill -9 in the middle of waiting for a release that never becomes healthy.
    let mut victim = std::process::Command::new(assert_cmd::cargo::cargo_bin("shipgate"))
        .current_dir(demo.dir.path())
        .env_clear()
        .args([
            "deploy",
            "--image-tag",
            "v2-unhealthy",
            "--quiet",
            "--config",
        ])
        .arg(&demo.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = demo.dir.path().join("state/local/state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&state)
        .unwrap_or_default()
        .contains("v2-unhealthy")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let (_, stdout, _) = demo.run(&["lock", "status"]);
    assert!(
        stdout.contains("locked by run"),
        "the dead run still holds the lock: {stdout}"
    );

    let (code, stdout, stderr) = demo.run(&["deploy", "--image-tag", "v3"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("recovered the lock of run") && stderr.contains("is gone"),
        "{stderr}"
    );
    assert!(
        stderr.contains("died without finishing; recorded as aborted"),
        "{stderr}"
    );

    let (_, stdout, _) = demo.run(&["ledger", "list", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["succeeded", "aborted", "succeeded"]);
    let (_, stdout, _) = demo.run(&["local", "status"]);
    assert!(stdout.starts_with("api: demo/api:v3"), "{stdout}");
    assert!(
        stdout.contains("failed      demo/api:v2-unhealthy"),
        "the interrupted release was stopped: {stdout}"
    );
}

#[test]
fn github_gets_a_deployment_with_statuses_and_one_sticky_pr_comment() {
    const SHA: &str = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
    let demo = Demo::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let github = shipgate_testkit::fakes::FakeGithub::new("acme/demo", "ghs_token");
    github.repo.lock().unwrap().pulls.push((SHA.into(), 12));
    let url = runtime.block_on(github.clone().start());
    let mut text = std::fs::read_to_string(&demo.config).unwrap();
    text.push_str(&format!(
        "\n[github]\nrepository = \"acme/demo\"\napi_url = \"{url}\"\n[notify]\ngithub_deployments = true\ngithub_pr_comment = true\n"
    ));
    std::fs::write(&demo.config, text).unwrap();
    let outputs = demo.dir.path().join("github-output");
    let step_summary = demo.dir.path().join("step-summary.md");
    let (outputs_path, summary_path) = (
        outputs.display().to_string(),
        step_summary.display().to_string(),
    );
    let env = [
        ("GITHUB_TOKEN", "ghs_token"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_REPOSITORY", "acme/demo"),
        ("GITHUB_RUN_ID", "99"),
        ("GITHUB_OUTPUT", outputs_path.as_str()),
        ("GITHUB_STEP_SUMMARY", summary_path.as_str()),
    ];
    let (code, stdout, stderr) = demo.run_with(&["deploy", "--image-tag", "v1"], &env);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // No pause: GitHub's one-second spacing is per token, across processes. Each process
    // spaces its own writes; the second one's first write may come too soon after the first
    // process's last, and is then refused with a secondary rate limit, which it waits out.
    let (code, stdout, stderr) = demo.run_with(&["deploy", "--image-tag", "v2-broken"], &env);
    assert_eq!(code, 3, "{stdout}\n{stderr}");

    // Step outputs of both runs: the second names the tag it rolled back to.
    let written = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        written.contains("outcome=succeeded\nimage_tag=v1\nrollback_tag=\n"),
        "{written}"
    );
    assert!(
        written.contains("outcome=rolled_back\nimage_tag=v2-broken\nrollback_tag=v1\n"),
        "{written}"
    );
    let markdown = std::fs::read_to_string(&step_summary).unwrap();
    assert!(
        markdown.contains("rolled_back") || markdown.contains("rolled back"),
        "{markdown}"
    );
    demo.canary.assert_absent("the step summary", &markdown);

    let repo = github.repo.lock().unwrap();
    assert_eq!(repo.deployments.len(), 2);
    assert_eq!(repo.deployments[0]["ref"], SHA);
    let states: Vec<&str> = repo
        .deployment_statuses
        .iter()
        .map(|(_, b)| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["in_progress", "success", "in_progress", "failure"]);
    let (_, last) = repo.deployment_statuses.last().unwrap();
    assert!(
        last["description"]
            .as_str()
            .unwrap()
            .starts_with("rolled_back"),
        "{last}"
    );
    assert_eq!(
        last["log_url"],
        "https://github.com/acme/demo/actions/runs/99"
    );
    // One comment on PR 12, updated by the second deploy.
    assert_eq!(repo.comments.len(), 1, "{:?}", repo.comments);
    assert_eq!(repo.comments[0].0, 12);
    assert!(
        repo.comments[0].1.contains("rolled"),
        "{}",
        repo.comments[0].1
    );
    demo.canary.assert_absent("PR comment", &repo.comments[0].1);
    assert_eq!(repo.violations, Vec::<String>::new());
    // Within a process writes are spaced; only the boundary between the two may be throttled.
    assert!(repo.throttled <= 1, "{} writes throttled", repo.throttled);
    drop(repo);

    // The summaries the ledger keeps (the dashboard's run pages) link the Actions run, the
    // commit, the GitHub deployment and the pull request commented on.
    let ledger_url = format!(
        "sqlite://{}",
        demo.dir.path().join("state/ledger.db").display()
    );
    let links = runtime.block_on(async {
        let ledger = shipgate_ledger::Ledger::open(&ledger_url).await.unwrap();
        let last = ledger.runs(None, 1).await.unwrap().remove(0);
        let stored = ledger.run_summary(&last.id).await.unwrap().unwrap();
        let summary: serde_json::Value = serde_json::from_str(&stored).unwrap();
        demo.canary.assert_absent("the stored summary", &stored);
        assert_eq!(summary["outcome"], "rolled_back");
        summary["links"].clone()
    });
    let urls: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://github.com/acme/demo/actions/runs/99",
            &format!("https://github.com/acme/demo/commit/{SHA}"),
            "https://github.com/acme/demo/deployments",
            "https://github.com/acme/demo/pull/12",
        ],
        "{links}"
    );
}

#[test]
fn notifications_are_signed_queued_in_the_ledger_and_failures_stay_queued() {
    let demo = Demo::new();
    let key = Canary::new("hmac-key");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let received: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let sink = received.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    let signature = headers["shipgate-signature"].to_str().unwrap().to_owned();
                    sink.lock().unwrap().push((signature, body));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .route(
            "/down",
            axum::routing::post(|| async { axum::http::StatusCode::BAD_GATEWAY }),
        );
    let addr = runtime.block_on(shipgate_testkit::serve(app));
    let mut text = std::fs::read_to_string(&demo.config).unwrap();
    text.push_str(&format!(
        "\n[[notify.webhooks]]\nurl = \"http://{addr}/hook\"\n[[notify.webhooks]]\nurl = \"http://{addr}/down\"\n"
    ));
    std::fs::write(&demo.config, text).unwrap();
    let env = [("WEBHOOK_SIGNING_SECRET", key.value())];
    let (code, stdout, stderr) = demo.run_with(&["deploy", "--image-tag", "v1"], &env);
    assert_eq!(
        code, 0,
        "a failed notification never changes the outcome: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("notification to webhook-2") && stderr.contains("stays queued"),
        "{stderr}"
    );
    key.assert_absent("stdout", &stdout);
    key.assert_absent("stderr", &stderr);
    let (signature, body) = received.lock().unwrap()[0].clone();
    shipgate_notify::verify(
        &shipgate_core::Secret::new(key.value()),
        &signature,
        &body,
        std::time::SystemTime::now(),
        std::time::Duration::from_secs(300),
    )
    .unwrap();
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["outcome"], "succeeded");
    demo.canary.assert_absent("the webhook body", &body);

    // The failed one is queued with backoff: not due yet.
    let (code, stdout, _) = demo.run_with(&["notify", "deliver"], &env);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.trim(), "0 delivered, 0 failed");
}

#[test]
fn a_monitor_alert_shows_what_the_provider_runs_and_its_logs() {
    let demo = Demo::new();
    let (code, stdout, stderr) = demo.run(&["deploy", "--image-tag", "v1"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let runtime = shipgate_testkit::runtime();
    let github = shipgate_testkit::fakes::FakeGithub::new("acme/demo", "ghs_token");
    let url = runtime.block_on(github.clone().start());
    let mut text = std::fs::read_to_string(&demo.config).unwrap();
    text.push_str(&format!(
        "\n[github]\nrepository = \"acme/demo\"\napi_url = \"{url}\"\n\
         [[monitor.targets]]\nname = \"orders\"\nschedule = \"15m\"\n\
         url = \"http://127.0.0.1:{}/api/missing\"\nopen_after = 1\n",
        demo.port
    ));
    std::fs::write(&demo.config, text).unwrap();
    let (code, stdout, stderr) =
        demo.run_with(&["monitor", "--once"], &[("GITHUB_TOKEN", "ghs_token")]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let repo = github.repo.lock().unwrap();
    assert_eq!(repo.issues.len(), 1, "{stderr}");
    let body = repo.issues[0]["body"].as_str().unwrap().to_owned();
    for expected in [
        "GET /api/missing → 404",
        "Last deploy: run `",
        "image tag `v1`, succeeded",
        "Running now: local: api = demo/api:v1",
        "### Recent provider logs",
        "local: api (pid ",
    ] {
        assert!(body.contains(expected), "{expected} missing from\n{body}");
    }
    demo.canary.assert_absent("the alert issue", &body);
}

/// The dry run names the rollback candidate the real run then chooses: the live release when
/// it is verified good (not the one before it), through the same code.
#[test]
fn the_dry_run_names_the_rollback_the_real_run_chooses() {
    let demo = Demo::new();
    for tag in ["v1", "v2"] {
        let (code, stdout, stderr) = demo.run(&["deploy", "--image-tag", tag]);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
    }
    let (code, stdout, stderr) = demo.run(&[
        "deploy",
        "--image-tag",
        "v3-broken",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let candidate = &plan["targets"][0]["rollback_candidate"];
    assert_eq!(candidate["images"]["api"], "demo/api:v2", "{plan:#}");
    let revision = candidate["id"].as_str().unwrap().to_owned();
    assert!(
        plan["targets"][0]["rollback_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r
                .as_str()
                .unwrap()
                .contains("most recent gate verdict on record passed")),
        "{plan:#}"
    );

    let (code, stdout, stderr) = demo.run(&["deploy", "--image-tag", "v3-broken"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("local: rolling back to revision {revision}")),
        "{stderr}"
    );
    let (code, stdout, _) = demo.run(&["local", "status"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("api: demo/api:v2"), "{stdout}");
}

/// A deploy that cannot get the lock in time is an outcome of its own, with a summary and a
/// ledger row (exit 6), not a usage error without either.
#[test]
fn a_deploy_that_cannot_get_the_lock_in_time_ends_lock_timeout_with_a_summary_and_a_ledger_row() {
    let demo = Demo::new();
    // Another run holds the lock (a live process on another runner).
    hold_lock(&format!(
        "sqlite://{}",
        demo.dir.path().join("state/ledger.db").display()
    ));
    let summary = demo.dir.path().join("out/summary.json");
    let (code, stdout, stderr) = demo.run_with(
        &[
            "deploy",
            "--image-tag",
            "v1",
            "--summary",
            &summary.display().to_string(),
        ],
        &[("SHIPGATE_LEDGER__LOCK_TIMEOUT", "1s")],
    );
    assert_eq!(code, 6, "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("deploy lock_timeout: deploy lock for demo/staging still held by run holder-run (octocat on runner-7"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        (json["outcome"].as_str(), json["exit_code"].as_u64()),
        (Some("lock_timeout"), Some(6))
    );
    let (code, stdout, _) = demo.run(&["ledger", "list", "--format", "json"]);
    assert_eq!(code, 0);
    let runs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "lock_timeout", "{runs:#}");
    assert_eq!(runs[0]["id"], json["run_id"]);
    // Nothing was deployed.
    let (_, stdout, _) = demo.run(&["local", "status"]);
    assert!(!stdout.contains("demo/api:v1"), "{stdout}");
}

/// A summary path that cannot be written is reported as not written, and a run that would
/// exit 0 exits 8: the promised artifact is missing.
#[test]
fn a_summary_that_cannot_be_written_says_so_and_the_exit_code_shows_it() {
    let demo = Demo::new();
    let blocker = demo.dir.path().join("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let path = blocker.join("summary.json");
    let (code, stdout, stderr) = demo.run(&[
        "deploy",
        "--image-tag",
        "v1",
        "--summary",
        &path.display().to_string(),
    ]);
    assert_eq!(code, 8, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("deploy succeeded"), "{stdout}");
    assert!(stdout.contains("(NOT written)"), "{stdout}");
    assert!(
        stderr.contains("the summary was NOT written: cannot create")
            && stderr.contains("--summary names the file"),
        "{stderr}"
    );
    // A failing outcome keeps its own code.
    let (code, stdout, stderr) = demo.run(&[
        "deploy",
        "--image-tag",
        "v2-broken",
        "--summary",
        &path.display().to_string(),
    ]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
}

/// Holds the deploy lock of demo/staging in `url` as another runner's run would.
fn hold_lock(url: &str) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ledger = shipgate_ledger::Ledger::open(url).await.unwrap();
        ledger
            .acquire_lock(
                &shipgate_ledger::LockRequest {
                    app: "demo".into(),
                    environment: "staging".into(),
                    run_id: "holder-run".into(),
                    owner: "octocat".into(),
                    host: "runner-7".into(),
                    pid: 1,
                    reason: "deploy v0".into(),
                    ttl: std::time::Duration::from_secs(600),
                    supersede: false,
                },
                std::time::Duration::from_secs(1),
                &|_| {},
                &tokio_util::sync::CancellationToken::new(),
            )
            .await
            .unwrap();
    });
}

/// Two pushes in a row, deployed by two processes waiting for one lock (on SQLite and on
/// Postgres): the older one gives up as `superseded` (exit 7, with a summary and a ledger
/// row) when the newer one queues behind it, and the newer one deploys. Then deploying the
/// older release again is refused unless --allow-older.
#[test]
fn a_queued_deploy_never_puts_an_older_release_over_a_newer_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let postgres = runtime.block_on(shipgate_testkit::postgres_database());
    for ledger in ["sqlite", "postgres"] {
        let demo = Demo::new();
        let url = if ledger == "sqlite" {
            format!(
                "sqlite://{}",
                demo.dir.path().join("state/ledger.db").display()
            )
        } else {
            postgres.clone()
        };
        let _ = demo.run_with(&["ledger", "list"], &[("SHIPGATE_LEDGER__URL", &url)]);
        hold_lock(&url);
        let spawn = |tag: &str| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("shipgate"))
                .current_dir(demo.dir.path())
                .env_clear()
                .env("PRODUCTION_API_KEY", demo.canary.value())
                .env("SHIPGATE_LEDGER__URL", &url)
                .args(["deploy", "--image-tag", tag, "--summary"])
                .arg(demo.dir.path().join(format!("{tag}.json")))
                .arg("--config")
                .arg(&demo.config)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let older = spawn("v1");
        // v1 stands in the lock queue before v2 starts.
        let queued = (0..600).any(|_| {
            let (_, stdout, _) =
                demo.run_with(&["lock", "status"], &[("SHIPGATE_LEDGER__URL", &url)]);
            std::thread::sleep(std::time::Duration::from_millis(50));
            stdout.contains("waiting: run")
        });
        assert!(queued, "v1 never queued");
        let newer = spawn("v2");
        // v1 gives up as soon as v2 queues behind it.
        let older = older.wait_with_output().unwrap();
        assert_eq!(
            older.status.code(),
            Some(7),
            "{}",
            String::from_utf8_lossy(&older.stdout)
        );
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(demo.dir.path().join("v1.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["outcome"], "superseded", "{json:#}");
        assert!(
            json["message"].as_str().unwrap().contains("deploy v2"),
            "{json:#}"
        );
        // The holder finishes; the newer deploy goes on.
        runtime.block_on(async {
            let l = shipgate_ledger::Ledger::open(&url).await.unwrap();
            l.release_lock("demo", "staging", "holder-run")
                .await
                .unwrap();
        });
        let newer = newer.wait_with_output().unwrap();
        assert_eq!(
            newer.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&newer.stdout)
        );
        let (_, stdout, _) = demo.run(&["local", "status"]);
        assert!(stdout.starts_with("api: demo/api:v2"), "{stdout}");
        let (code, stdout, _) = demo.run_with(
            &["ledger", "list", "--format", "json"],
            &[("SHIPGATE_LEDGER__URL", &url)],
        );
        assert_eq!(code, 0);
        let runs: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let outcomes: Vec<&str> = runs
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or("running"))
            .collect();
        assert!(
            outcomes.contains(&"superseded") && outcomes.contains(&"succeeded"),
            "{outcomes:?}"
        );

        if ledger == "sqlite" {
            // v1 (never live) is not older by the ledger; v3 then makes v2 older.
            let (code, out, err) = demo.run(&["deploy", "--image-tag", "v3"]);
            assert_eq!(code, 0, "{out}{err}");
            let (code, out, _) = demo.run(&["deploy", "--image-tag", "v2"]);
            assert_eq!(code, 7, "{out}");
            assert!(
                out.contains("v2 is older than the live release: it went live in run")
                    && out.contains("--allow-older"),
                "{out}"
            );
            let (_, stdout, _) = demo.run(&["local", "status"]);
            assert!(stdout.starts_with("api: demo/api:v3"), "{stdout}");
            let (code, out, err) = demo.run(&["deploy", "--image-tag", "v2", "--allow-older"]);
            assert_eq!(code, 0, "{out}{err}");
        }
        let _ = demo.run_with(&["local", "stop"], &[("SHIPGATE_LEDGER__URL", &url)]);
    }
}

/// A deploy's check-env step checks what the configuration implies, `[env.vars]` rules
/// included: a variable they require that is missing stops the run before anything changes
/// (it used to be downgraded to optional when `[env] required` was unset).
#[test]
fn a_deploy_fails_closed_on_a_variable_its_env_rules_require() {
    let demo = Demo::new();
    let mut text = std::fs::read_to_string(&demo.config).unwrap();
    text.push_str("\n[env.vars.PAYMENTS_WEBHOOK_SECRET]\nkind = \"non-empty\"\n");
    std::fs::write(&demo.config, text).unwrap();
    let (code, stdout, stderr) = demo.run(&["deploy", "--image-tag", "v1"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("check-env failed: PAYMENTS_WEBHOOK_SECRET"),
        "{stdout}"
    );
    let (_, stdout, _) = demo.run(&["local", "status"]);
    assert!(
        !stdout.contains("demo/api:v1"),
        "nothing deployed: {stdout}"
    );
    let (code, stdout, stderr) = demo.run_with(
        &["deploy", "--image-tag", "v1"],
        &[("PAYMENTS_WEBHOOK_SECRET", "whsec-test")],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

#[test]
fn a_sigterm_during_a_canary_step_puts_every_user_back_before_exit_130() {
    let demo = Demo::new();
    let (code, ..) = demo.run(&["deploy", "--image-tag", "v1"]);
    assert_eq!(code, 0);

    // A canary whose first step would run for a minute; SIGTERM arrives during it.
    let summary = demo.dir.path().join("canary.json");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("shipgate"))
        .current_dir(demo.dir.path())
        .env_clear()
        .env("SHIPGATE_DEPLOY__STRATEGY", "canary")
        .env("SHIPGATE_DEPLOY__PAUSE", "60s")
        .args(["deploy", "--image-tag", "v2", "--quiet", "--summary"])
        .arg(&summary)
        .arg("--config")
        .arg(&demo.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The router's backend file splits requests once the first step started.
    let backend = demo.dir.path().join("state/local/api/backend");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&backend)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130));

    // Read back: one backend again, the v1 process, serving users on the stable port.
    assert_eq!(
        std::fs::read_to_string(&backend).unwrap().lines().count(),
        1
    );
    let (_, stdout, _) = demo.run(&["local", "status"]);
    assert!(stdout.starts_with("api: demo/api:v1"), "{stdout}");
    let url = format!("http://127.0.0.1:{}/version", demo.port);
    let served = shipgate_testkit::runtime().block_on(async move {
        let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
        client.get(url).send().await.unwrap().text().await.unwrap()
    });
    assert_eq!(served, "v1");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        (summary["outcome"].as_str(), summary["strategy"].as_str()),
        (Some("aborted"), Some("canary"))
    );
    assert!(
        summary["message"]
            .as_str()
            .unwrap()
            .contains("interrupted during the canary step at 10%"),
        "{summary}"
    );
}
