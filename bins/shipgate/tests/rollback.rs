//! `shipgate rollback plan` against a real OCI registry (docker-registry on loopback), the fake
//! GitHub's publish-workflow runs and a SQLite ledger: the chosen release with its reason
//! chain (text and JSON), exit 1 when nothing qualifies, and usage errors.

#![allow(clippy::unwrap_used)]

use assert_cmd::Command;
use shipgate_testkit::fakes::FakeGithub;
use shipgate_testkit::registry::Registry;

fn sha(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn plan(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .env("GITHUB_TOKEN", "ghs_token")
        .args(["rollback", "plan", "--config"])
        .arg(dir.join("shipgate.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn rollback_plan_chooses_the_newest_publish_run_whose_image_exists() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::start();
    let (a, b, c) = (sha('a'), sha('b'), sha('c'));
    rt.block_on(registry.push("acme/api", &c));
    let github = FakeGithub::new("acme/shop", "ghs_token");
    let run = |s: &str, n: u64| (s.to_owned(), n, "success".to_owned(), "main".to_owned());
    github.repo.lock().unwrap().workflows.push((
        "publish-images.yml".into(),
        vec![run(&a, 3), run(&b, 2), run(&c, 1)],
    ));
    let url = rt.block_on(github.start());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shipgate.toml"),
        format!(
            "app = \"shop\"\nenvironment = \"production\"\n[image]\nregistry = \"{}\"\nowner = \"acme\"\n\
             [services.api]\nimage = \"api\"\n[targets.local]\nenabled = true\n\
             [rollback]\nsources = [\"ledger\", \"github-workflow\"]\nworkflow = \"publish-images.yml\"\nbranch = \"main\"\n\
             [github]\nrepository = \"acme/shop\"\napi_url = \"{url}\"\n[ledger]\nurl = \"sqlite://{}\"\n",
            registry.host,
            dir.path().join("ledger.db").display()
        ),
    )
    .unwrap();

    let (code, stdout, stderr) = plan(dir.path(), &["--failing", &a[..7]]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0], "chose cccccccccccc from publish-images.yml run #1",
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(
            "skipped aaaaaaaaaaaa (publish-images.yml run #3): it is the failing release"
        ),
        "{stdout}"
    );
    assert!(
        lines[2].contains("run #2): image") && lines[2].ends_with("missing in its registry"),
        "{stdout}"
    );
    assert_eq!(lines[3], format!("  api: {}/acme/api:{c}", registry.host));

    let (code, json, _) = plan(dir.path(), &["--failing", &a, "--format", "json"]);
    assert_eq!(code, 0);
    let decision: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(decision["chosen"]["origin"], "publish-images.yml run #1");
    assert_eq!(decision["considered"].as_array().unwrap().len(), 3);

    // Rolling back from c: a and b were never pushed, c is the failing one: nothing qualifies.
    let (code, stdout, _) = plan(dir.path(), &["--failing", &c]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.starts_with("no rollback candidate"), "{stdout}");
}

#[test]
fn a_failing_value_that_is_not_a_sha_or_tag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shipgate.toml"), "app = \"shop\"\n").unwrap();
    let huge = "x".repeat(100_000);
    for bad in ["not a sha", "", "a/b:c@x", huge.as_str()] {
        let (code, _, stderr) = plan(dir.path(), &["--failing", bad]);
        assert_eq!(code, 2, "{bad}: {stderr}");
        // The flag the user typed, never the deploy flag it stands for; a bounded excerpt.
        assert!(
            stderr.contains("--failing") && !stderr.contains("--image-tag"),
            "{stderr}"
        );
        assert!(stderr.len() < 1_000, "{} bytes", stderr.len());
    }
}
