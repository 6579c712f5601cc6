//! `check-env` over 500 variables with the full rule set (every kind, conditional rules,
//! Helm/Railway/Fly/smoke/CI gate enabled, a 500-line .env.sample).
//!
//! Run: `cargo bench -p shipgate-env --bench check_env`. The cold-process figure (a new
//! `shipgate check-env` process each time) comes from `scripts/bench-check-env`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_main};
use shipgate_config::{LoadOptions, load};
use shipgate_env::{CheckInput, DotenvFile, check};

/// Builds the configuration text and variables shared with scripts/bench-check-env.
fn fixture() -> (String, BTreeMap<String, String>, String) {
    let kinds = ["url", "bool", "integer", "port", "base64", "non-empty"];
    let mut toml = String::from(
        "app = \"bench\"\n[targets.helm]\nenabled = true\n[targets.railway]\nenabled = true\n\
         [targets.fly]\nenabled = true\napp = \"bench\"\n[smoke]\nenabled = true\n[ci_gate]\nenabled = true\n",
    );
    let mut vars = BTreeMap::new();
    let mut sample = String::new();
    for i in 0..500 {
        let kind = kinds[i % kinds.len()];
        let name = format!("VAR_{i:03}");
        toml.push_str(&format!("[env.vars.{name}]\nkind = \"{kind}\"\n"));
        let value = match kind {
            "url" => format!("https://svc{i}.example.com/path"),
            "bool" => "true".to_owned(),
            "integer" => i.to_string(),
            "port" => (1024 + i).to_string(),
            "base64" => "aGVsbG8gd29ybGQ=".to_owned(),
            _ => format!("value-{i}"),
        };
        vars.insert(name.clone(), value);
        sample.push_str(&format!("{name}=\n"));
    }
    for (k, v) in [
        ("ENVIRONMENT", "production"),
        (
            "KUBE_CONFIG_DATA",
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://k8s.example.com\ncontexts:\n- name: c\n  context:\n    cluster: c\ncurrent-context: c\n",
        ),
        ("RAILWAY_TOKEN", "t"),
        ("RAILWAY_PROJECT", "p"),
        ("RAILWAY_ENVIRONMENT", "e"),
        ("RAILWAY_API_SERVICE", "api"),
        ("FLY_API_TOKEN", "t"),
        ("GITHUB_TOKEN", "t"),
        ("PRODUCTION_API_URL", "https://api.example.com"),
        ("image_tag", "3f2c1a9"),
    ] {
        vars.insert(k.to_owned(), v.to_owned());
    }
    // A waxwatch-like app's own variables.
    for name in [
        "DATABASE_URL",
        "AUTH_ISSUER",
        "AUTH_JWKS_URL",
        "TOKEN_CRYPTO_KMS_KEY_ID",
        "DISCOGS_USER_AGENT",
        "DISCOGS_TOKEN",
        "EBAY_CLIENT_ID",
        "EBAY_CLIENT_SECRET",
    ] {
        vars.insert(name.to_owned(), "set".to_owned());
    }
    for name in vars.keys().filter(|k| !k.starts_with("VAR_")) {
        sample.push_str(&format!("{name}=\n"));
    }
    (toml, vars, sample)
}

fn bench(c: &mut Criterion) {
    let (toml, vars, sample) = fixture();
    let dir = std::env::temp_dir().join(format!("shipgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config_path = dir.join("shipgate.toml");
    std::fs::write(&config_path, &toml).expect("write config");
    let sample = DotenvFile::parse(Path::new(".env.sample"), &sample).expect("sample");

    c.bench_function("check-env: load config + check 500 variables", |b| {
        b.iter(|| {
            let loaded = load(&LoadOptions {
                file: Some(&config_path),
                vars: &vars,
                overrides: &[],
            })
            .expect("config loads");
            let mut input = CheckInput::new(&loaded.config, &vars);
            input.sample = Some(&sample);
            let report = check(&input).expect("check runs");
            assert!(report.passed(), "{:?}", report.findings);
            black_box(report);
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(harness::benches);
