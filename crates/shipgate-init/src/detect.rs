//! What a repository holds that a deploy configuration can be derived from.
//!
//! Every reader is lenient: a file that cannot be parsed becomes a warning [`Finding`] and is
//! otherwise ignored, so one odd file never stops `init`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Finding, InitError};

/// Seed workflow variables `init` recognises in existing workflows.
pub const KNOWN_VARIABLES: &[&str] = &[
    "ENABLE_HELM_DEPLOY",
    "ENABLE_RAILWAY_DEPLOY",
    "ENABLE_FLY_DEPLOY",
    "ENABLE_DEPLOY_SMOKE_GATE",
    "ENABLE_AUTO_ROLLBACK",
    "DEPLOY_ENVIRONMENT",
    "KUBE_CONFIG_DATA",
    "HELM_RELEASE_NAME",
    "HELM_NAMESPACE",
    "RAILWAY_TOKEN",
    "RAILWAY_API_TOKEN",
    "RAILWAY_PROJECT",
    "RAILWAY_PROJECT_ID",
    "RAILWAY_ENVIRONMENT",
    "RAILWAY_API_SERVICE",
    "RAILWAY_WORKER_SERVICE",
    "RAILWAY_WORKSPACE",
    "FLY_API_TOKEN",
    "PRODUCTION_API_URL",
    "PRODUCTION_API_KEY",
    "PRODUCTION_API_KEY_HEADER",
];

/// Directories never searched for charts.
const SKIPPED_DIRS: &[&str] = &["node_modules", "target", "vendor", "dist", "build", "venv"];

/// How deep the chart search goes below the repository root.
const MAX_DEPTH: usize = 5;

/// Files larger than this are not read (a generated file is not configuration).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Everything found in a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    /// The app name: the repository directory's name, made a valid label.
    pub app: String,
    /// A Helm chart.
    pub helm: Option<HelmLayout>,
    /// A `fly.toml`.
    pub fly: Option<FlyLayout>,
    /// A `railway.json` or `railway.toml`.
    pub railway: Option<RailwayLayout>,
    /// The dotenv sample (`.env.sample`, `.env.example`), relative to the root.
    pub env_sample: Option<String>,
    /// The names the sample lists.
    pub sample_names: Vec<String>,
    /// Makefile targets of the production checklist.
    pub make: MakeLayout,
    /// What the existing workflows show.
    pub workflows: WorkflowLayout,
    /// Health endpoints seen anywhere (probes, health checks, `curl` in workflows), in the
    /// order found, without duplicates.
    pub health_paths: Vec<String>,
    /// What was found where, and what was skipped.
    pub findings: Vec<Finding>,
}

/// A Helm chart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HelmLayout {
    /// The chart directory, relative to the root.
    pub chart_dir: String,
    /// `name` of `Chart.yaml`.
    pub chart_name: String,
    /// Services whose image tag the values set: (service, values path of the tag, image).
    pub services: Vec<HelmService>,
}

/// A service of a Helm chart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HelmService {
    /// The service name (the values key above `image`; `app` for a top-level `image`).
    pub name: String,
    /// The dotted values path of the image tag (`api.image.tag`).
    pub tag_path: String,
    /// `image.repository`, when set (`ghcr.io/acme/provenance-api`).
    pub repository: Option<String>,
}

/// A `fly.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlyLayout {
    /// The file, relative to the root.
    pub file: String,
    /// `app`.
    pub app: Option<String>,
    /// Process groups of `[processes]` (empty: the single `app` group).
    pub process_groups: Vec<String>,
}

/// A `railway.json` / `railway.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RailwayLayout {
    /// The file, relative to the root.
    pub file: String,
    /// `deploy.healthcheckPath`.
    pub healthcheck_path: Option<String>,
    /// `build.builder` (NIXPACKS, RAILPACK, DOCKERFILE…): the service builds from the repo.
    pub builder: Option<String>,
}

/// Makefile targets of the production checklist.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MakeLayout {
    /// A `check-prod-env` target.
    pub check_prod_env: bool,
    /// A `migrate-prod` target.
    pub migrate_prod: bool,
    /// The default of `PROD_REQUIRED_ENV_VARS`.
    pub prod_required: Option<Vec<String>>,
}

/// What the existing workflows show.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowLayout {
    /// The workflow files, relative to the root.
    pub files: Vec<String>,
    /// Known seed variables used ([`KNOWN_VARIABLES`]).
    pub variables: BTreeSet<String>,
    /// A workflow that publishes images (its file name): the rollback's history source.
    pub publish_workflow: Option<String>,
    /// That workflow's `name:` (what a `workflow_run` trigger names).
    pub publish_workflow_name: Option<String>,
    /// Names of the CI jobs (workflows on push or pull_request that do not deploy), with
    /// `${{ … }}` expressions turned into `*` globs.
    pub ci_checks: Vec<String>,
    /// A deploy workflow waits for the commit's checks before deploying.
    pub waits_for_checks: bool,
    /// A workflow comments on pull requests.
    pub pr_comment: bool,
    /// The cron schedule of a workflow that checks health on a schedule.
    pub monitor_schedule: Option<String>,
    /// The service a workflow deploys with `railway up --service NAME`.
    pub railway_service: Option<String>,
}

/// Reads the repository at `root`.
///
/// # Errors
/// [`InitError::NotADirectory`] when `root` is not a readable directory. Files that cannot be
/// read or parsed become warnings in [`Layout::findings`].
pub fn detect(root: &Path) -> Result<Layout, InitError> {
    if !root.is_dir() {
        return Err(InitError::NotADirectory(root.to_owned()));
    }
    let mut layout = Layout {
        app: app_name(root),
        ..Layout::default()
    };
    detect_helm(root, &mut layout);
    detect_fly(root, &mut layout);
    detect_railway(root, &mut layout);
    detect_sample(root, &mut layout);
    detect_make(root, &mut layout);
    detect_workflows(root, &mut layout);
    Ok(layout)
}

/// The directory's name as an app label: lowercase letters, digits and dashes.
fn app_name(root: &Path) -> String {
    let name = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let label = label.trim_matches('-').to_owned();
    if label.is_empty() {
        "app".to_owned()
    } else {
        label
    }
}

/// The text of a file, or a warning finding when it cannot be read.
fn read(root: &Path, relative: &str, layout: &mut Layout) -> Option<String> {
    let path = root.join(relative);
    let size = std::fs::metadata(&path).ok()?.len();
    if size > MAX_FILE_BYTES {
        layout
            .findings
            .push(Finding::warning(relative, "larger than 1 MiB; not read"));
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(err) => {
            layout
                .findings
                .push(Finding::warning(relative, format!("cannot be read: {err}")));
            None
        }
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// `Chart.yaml` files below `root`, shallowest first.
fn find_charts(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut queue = vec![(root.to_owned(), 0usize)];
    while let Some((dir, depth)) = queue.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < MAX_DEPTH
                    && !name.starts_with('.')
                    && !SKIPPED_DIRS.contains(&name.as_str())
                {
                    queue.push((entry.path(), depth + 1));
                }
            } else if kind.is_file() && name == "Chart.yaml" {
                found.push(dir.clone());
            }
        }
    }
    found.sort_by_key(|p| (p.components().count(), p.clone()));
    found
}

fn detect_helm(root: &Path, layout: &mut Layout) {
    let charts = find_charts(root);
    let Some(chart) = charts.first() else {
        return;
    };
    let chart_dir = relative(root, chart);
    for other in &charts[1..] {
        layout.findings.push(Finding::warning(
            &format!("{}/Chart.yaml", relative(root, other)),
            format!("another chart; {chart_dir} is used (edit [targets.helm] chart to change)"),
        ));
    }
    let chart_file = format!("{chart_dir}/Chart.yaml");
    let Some(text) = read(root, &chart_file, layout) else {
        return;
    };
    let chart_name = match serde_saphyr::from_str::<Value>(&text) {
        Ok(value) => value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        Err(err) => {
            layout.findings.push(Finding::warning(
                &chart_file,
                format!(
                    "is not valid YAML ({}); skipped",
                    first_line(&err.to_string())
                ),
            ));
            return;
        }
    };
    let values_file = format!("{chart_dir}/values.yaml");
    let mut services = Vec::new();
    if let Some(text) = read(root, &values_file, layout) {
        match serde_saphyr::from_str::<Value>(&text) {
            Ok(values) => {
                image_tags(&values, "", &mut services);
                probe_paths(&values, &mut layout.health_paths);
            }
            Err(err) => layout.findings.push(Finding::warning(
                &values_file,
                format!(
                    "is not valid YAML ({}); no image tags read",
                    first_line(&err.to_string())
                ),
            )),
        }
    }
    let described = if services.is_empty() {
        "a Helm chart; its values set no image.tag, so the tag path is a guess".to_owned()
    } else {
        format!(
            "a Helm chart; image tags at {}",
            services
                .iter()
                .map(|s| s.tag_path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    layout.findings.push(Finding::info(&chart_file, described));
    layout.helm = Some(HelmLayout {
        chart_dir,
        chart_name,
        services,
    });
}

/// Every `X.image.tag` (or top-level `image.tag`) of the values, depth-first in file order.
fn image_tags(value: &Value, prefix: &str, out: &mut Vec<HelmService>) {
    let Some(map) = value.as_object() else {
        return;
    };
    if let Some(image) = map.get("image").and_then(Value::as_object)
        && image.contains_key("tag")
    {
        let name = prefix.rsplit('.').next().filter(|s| !s.is_empty());
        out.push(HelmService {
            name: name.unwrap_or("app").to_owned(),
            tag_path: if prefix.is_empty() {
                "image.tag".to_owned()
            } else {
                format!("{prefix}.image.tag")
            },
            repository: image
                .get("repository")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    if prefix.split('.').count() >= 3 {
        return;
    }
    for (key, child) in map {
        if key == "image" {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        image_tags(child, &path, out);
    }
}

/// `httpGet.path` of probes anywhere in the values.
fn probe_paths(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(path) = map
                .get("httpGet")
                .and_then(|g| g.get("path"))
                .and_then(Value::as_str)
            {
                push_path(out, path);
            }
            for child in map.values() {
                probe_paths(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| probe_paths(i, out)),
        _ => {}
    }
}

fn push_path(out: &mut Vec<String>, path: &str) {
    let path = path.trim();
    if path.starts_with('/')
        && path.len() <= 200
        && !path.contains(char::is_whitespace)
        && !out.iter().any(|p| p == path)
    {
        out.push(path.to_owned());
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

fn parse_toml(text: &str) -> Result<Value, String> {
    toml_edit::de::from_str::<Value>(text).map_err(|e| first_line(&e.to_string()))
}

fn detect_fly(root: &Path, layout: &mut Layout) {
    let file = "fly.toml";
    if !root.join(file).is_file() {
        return;
    }
    let Some(text) = read(root, file, layout) else {
        return;
    };
    let value = match parse_toml(&text) {
        Ok(value) => value,
        Err(err) => {
            layout.findings.push(Finding::warning(
                file,
                format!("is not valid TOML ({err}); skipped"),
            ));
            return;
        }
    };
    let app = value.get("app").and_then(Value::as_str).map(str::to_owned);
    let process_groups = value
        .get("processes")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    // [[http_service.checks]], [[services.http_checks]], [checks.X] with type = "http".
    let mut paths = Vec::new();
    if let Some(checks) = value
        .get("http_service")
        .and_then(|s| s.get("checks"))
        .and_then(Value::as_array)
    {
        for check in checks {
            if let Some(path) = check.get("path").and_then(Value::as_str) {
                push_path(&mut paths, path);
            }
        }
    }
    if let Some(services) = value.get("services").and_then(Value::as_array) {
        for service in services {
            for check in service
                .get("http_checks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(path) = check.get("path").and_then(Value::as_str) {
                    push_path(&mut paths, path);
                }
            }
        }
    }
    if let Some(checks) = value.get("checks").and_then(Value::as_object) {
        for check in checks.values() {
            if check.get("type").and_then(Value::as_str) == Some("http")
                && let Some(path) = check.get("path").and_then(Value::as_str)
            {
                push_path(&mut paths, path);
            }
        }
    }
    for path in &paths {
        push_path(&mut layout.health_paths, path);
    }
    layout.findings.push(Finding::info(
        file,
        format!(
            "a Fly.io app{}{}",
            app.as_deref()
                .map(|a| format!(" `{a}`"))
                .unwrap_or_default(),
            if paths.is_empty() {
                String::new()
            } else {
                format!("; health checks {}", paths.join(", "))
            }
        ),
    ));
    layout.fly = Some(FlyLayout {
        file: file.to_owned(),
        app,
        process_groups,
    });
}

fn detect_railway(root: &Path, layout: &mut Layout) {
    let Some(file) = ["railway.json", "railway.toml"]
        .into_iter()
        .find(|f| root.join(f).is_file())
    else {
        return;
    };
    let Some(text) = read(root, file, layout) else {
        return;
    };
    let parsed = if file.ends_with(".json") {
        serde_json::from_str::<Value>(&text).map_err(|e| first_line(&e.to_string()))
    } else {
        parse_toml(&text)
    };
    let value = match parsed {
        Ok(value) => value,
        Err(err) => {
            layout.findings.push(Finding::warning(
                file,
                format!("cannot be parsed ({err}); skipped"),
            ));
            return;
        }
    };
    let healthcheck_path = value
        .get("deploy")
        .and_then(|d| d.get("healthcheckPath"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(path) = &healthcheck_path {
        push_path(&mut layout.health_paths, path);
    }
    let builder = value
        .get("build")
        .and_then(|b| b.get("builder"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    layout.findings.push(Finding::info(
        file,
        format!(
            "a Railway service built from this repository{}",
            healthcheck_path
                .as_deref()
                .map(|p| format!("; health check {p}"))
                .unwrap_or_default()
        ),
    ));
    layout.railway = Some(RailwayLayout {
        file: file.to_owned(),
        healthcheck_path,
        builder,
    });
}

fn detect_sample(root: &Path, layout: &mut Layout) {
    let Some(file) = [".env.sample", ".env.example", "env.sample"]
        .into_iter()
        .find(|f| root.join(f).is_file())
    else {
        return;
    };
    let Some(text) = read(root, file, layout) else {
        return;
    };
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|n| is_variable_name(n))
        .collect();
    layout.findings.push(Finding::info(
        file,
        format!("a dotenv sample naming {} variables", names.len()),
    ));
    layout.env_sample = Some(file.to_owned());
    layout.sample_names = names;
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn detect_make(root: &Path, layout: &mut Layout) {
    let file = "Makefile";
    if !root.join(file).is_file() {
        return;
    }
    let Some(text) = read(root, file, layout) else {
        return;
    };
    let mut make = MakeLayout::default();
    for line in text.lines() {
        if line.starts_with("check-prod-env:") {
            make.check_prod_env = true;
        }
        if line.starts_with("migrate-prod:") {
            make.migrate_prod = true;
        }
        if let Some(rest) = line.strip_prefix("PROD_REQUIRED_ENV_VARS") {
            let value = rest
                .trim_start()
                .trim_start_matches(['?', ':', '+'])
                .strip_prefix('=');
            if let Some(value) = value {
                let names: Vec<String> = value
                    .split([' ', ',', '\t'])
                    .filter(|n| is_variable_name(n))
                    .map(str::to_owned)
                    .collect();
                if !names.is_empty() {
                    make.prod_required = Some(names);
                }
            }
        }
    }
    if make.check_prod_env || make.migrate_prod {
        let targets: Vec<&str> = [
            make.check_prod_env.then_some("check-prod-env"),
            make.migrate_prod.then_some("migrate-prod"),
        ]
        .into_iter()
        .flatten()
        .collect();
        layout.findings.push(Finding::info(
            file,
            format!("production targets {}", targets.join(", ")),
        ));
    }
    layout.make = make;
}

/// Jobs of a workflow: (display name or id, on push/pull_request).
fn jobs(workflow: &Value) -> Vec<String> {
    workflow
        .get("jobs")
        .and_then(Value::as_object)
        .map(|jobs| {
            jobs.iter()
                .map(|(id, job)| {
                    let name = job.get("name").and_then(Value::as_str).unwrap_or(id);
                    glob_expressions(name)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Run Tests (shard ${{ matrix.shard }})` → `Run Tests (shard *)`.
fn glob_expressions(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        out.push('*');
        rest = rest[start..]
            .find("}}")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out
}

/// The `on:` triggers of a workflow as names.
fn triggers(workflow: &Value) -> BTreeSet<String> {
    // YAML 1.1 readers turn a bare `on` key into `true`; serde-saphyr keeps "on".
    let on = workflow.get("on").or_else(|| workflow.get("true"));
    match on {
        Some(Value::String(s)) => std::iter::once(s.clone()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

fn detect_workflows(root: &Path, layout: &mut Layout) {
    let dir = root.join(".github/workflows");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut seen = WorkflowLayout::default();
    let mut ci_jobs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in files {
        let file = format!(".github/workflows/{name}");
        let Some(text) = read(root, &file, layout) else {
            continue;
        };
        let workflow = match serde_saphyr::from_str::<Value>(&text) {
            Ok(value) => value,
            Err(err) => {
                layout.findings.push(Finding::warning(
                    &file,
                    format!(
                        "is not valid YAML ({}); skipped",
                        first_line(&err.to_string())
                    ),
                ));
                continue;
            }
        };
        seen.files.push(file.clone());
        let variables: Vec<&str> = KNOWN_VARIABLES
            .iter()
            .copied()
            .filter(|v| contains_word(&text, v))
            .collect();
        seen.variables
            .extend(variables.iter().map(|v| (*v).to_owned()));
        let lower = text.to_ascii_lowercase();
        let publishes = (lower.contains("docker/build-push-action")
            || lower.contains("docker push"))
            && !lower.contains("helm upgrade");
        let deploys = !variables.is_empty()
            || lower.contains("railway up")
            || lower.contains("flyctl deploy")
            || lower.contains("fly deploy")
            || lower.contains("helm upgrade");
        let waits = lower.contains("check-runs")
            || lower.contains("check_runs")
            || lower.contains("checks.listforref")
            || lower.contains("wait-on-check");
        seen.waits_for_checks |= deploys && waits;
        seen.pr_comment |= lower.contains("createcomment") || lower.contains("gh pr comment");
        let on = triggers(&workflow);
        if on.contains("schedule")
            && lower.contains("health")
            && seen.monitor_schedule.is_none()
            && let Some(cron) = workflow
                .get("on")
                .and_then(|o| o.get("schedule"))
                .and_then(Value::as_array)
                .and_then(|s| s.first())
                .and_then(|s| s.get("cron"))
                .and_then(Value::as_str)
        {
            seen.monitor_schedule = Some(cron.to_owned());
        }
        for word in text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            if let Some(at) = word.find("/health").or_else(|| word.find("/readyz")) {
                let path: String = word[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
                    .collect();
                push_path(&mut layout.health_paths, &path);
            }
        }
        if seen.railway_service.is_none() {
            seen.railway_service = railway_service(&text);
        }
        let mut what = Vec::new();
        if publishes {
            if seen.publish_workflow.is_none() {
                seen.publish_workflow = Some(name.clone());
                seen.publish_workflow_name = workflow
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            what.push("publishes images".to_owned());
        }
        if deploys {
            what.push("deploys".to_owned());
        }
        if !variables.is_empty() {
            what.push(format!("uses {}", variables.join(", ")));
        }
        if !deploys && !publishes && (on.contains("push") || on.contains("pull_request")) {
            let names = jobs(&workflow);
            what.push(format!("CI jobs {}", names.join(", ")));
            ci_jobs.insert(name.clone(), names);
        }
        if !what.is_empty() {
            layout.findings.push(Finding::info(&file, what.join("; ")));
        }
    }
    if seen.waits_for_checks {
        seen.ci_checks = ci_jobs.into_values().flatten().collect();
    }
    layout.workflows = seen;
}

/// NAME of `railway up … --service NAME` (or `-s NAME`, `--service=NAME`).
fn railway_service(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| l.contains("railway up") || l.contains("railway redeploy"))
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.iter().enumerate().find_map(|(i, word)| {
                let value = match *word {
                    "--service" | "-s" => words.get(i + 1).copied(),
                    _ => word.strip_prefix("--service="),
                }?;
                let value = value.trim_matches(['"', '\'']);
                (!value.is_empty() && !value.starts_with(['$', '-'])).then(|| value.to_owned())
            })
        })
}

/// `name` appears in `text` as a whole word (not as part of a longer name).
fn contains_word(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part(before) && !part(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_in_job_names_become_globs() {
        assert_eq!(
            glob_expressions("Run Tests (shard ${{ matrix.shard }})"),
            "Run Tests (shard *)"
        );
        assert_eq!(glob_expressions("Build"), "Build");
        assert_eq!(glob_expressions("a ${{ broken"), "a *");
    }

    #[test]
    fn the_railway_service_comes_from_railway_up() {
        assert_eq!(
            railway_service("run: railway up --service backend --detach").as_deref(),
            Some("backend")
        );
        assert_eq!(
            railway_service("railway up --service=\"api\"").as_deref(),
            Some("api")
        );
        assert_eq!(railway_service("railway up --service $SERVICE"), None);
        assert_eq!(railway_service("echo --service x"), None);
    }

    #[test]
    fn variables_match_whole_words_only() {
        assert!(contains_word(
            "x: ${{ secrets.RAILWAY_TOKEN }}",
            "RAILWAY_TOKEN"
        ));
        assert!(!contains_word("MY_RAILWAY_TOKEN_2", "RAILWAY_TOKEN"));
    }

    #[test]
    fn image_tags_are_found_per_service_and_at_the_top() {
        let values: Value = serde_saphyr::from_str(
            "api:\n  image:\n    repository: ghcr.io/acme/api\n    tag: x\nworker:\n  image:\n    tag: y\n",
        )
        .unwrap_or_default();
        let mut out = Vec::new();
        image_tags(&values, "", &mut out);
        let paths: Vec<_> = out.iter().map(|s| s.tag_path.as_str()).collect();
        assert_eq!(paths, ["api.image.tag", "worker.image.tag"]);
        assert_eq!(out[0].repository.as_deref(), Some("ghcr.io/acme/api"));
        let top: Value = serde_saphyr::from_str("image:\n  tag: x\n").unwrap_or_default();
        let mut out = Vec::new();
        image_tags(&top, "", &mut out);
        assert_eq!(out[0].name, "app");
        assert_eq!(out[0].tag_path, "image.tag");
    }
}
