//! From a [`Layout`] to the text of `shipgate.toml` and `.github/workflows/deploy.yml`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::{Layout, Level, Scaffold, ScaffoldFile};

/// Where the configuration is written, relative to the repository root.
pub const CONFIG_PATH: &str = "shipgate.toml";

/// Where the workflow is written, relative to the repository root.
pub const WORKFLOW_PATH: &str = ".github/workflows/deploy.yml";

/// The action reference the workflow uses: this shipgate's release.
const ACTION: &str = concat!("shipgate/shipgate@v", env!("CARGO_PKG_VERSION"));

/// A service of the release: its name and image repository (none for repo-built services).
struct Service {
    name: String,
    image: Option<String>,
}

/// What the files say, decided once from the layout.
struct Choices<'a> {
    layout: &'a Layout,
    registry: Option<String>,
    owner: Option<String>,
    services: Vec<Service>,
    helm: bool,
    railway: bool,
    railway_from_repo: bool,
    railway_token: &'static str,
    fly: bool,
    health_path: String,
    health_path_guessed: bool,
    base_url: Option<String>,
}

impl Choices<'_> {
    fn uses(&self, variable: &str) -> bool {
        self.layout.workflows.variables.contains(variable)
    }
}

/// Builds the files for `layout`: the configuration first, then the workflow.
pub fn scaffold(layout: &Layout) -> Scaffold {
    let choices = choose(layout);
    let mut todo = Vec::new();
    if !(choices.helm || choices.railway || choices.fly) {
        todo.push(
            "no deploy target was found (no Helm chart, fly.toml or railway.json, and no workflow using their variables): enable one in shipgate.toml ([targets.helm], [targets.railway], [targets.fly] or [targets.local]; docs/configuration.md)".to_owned(),
        );
    }
    if choices.health_path_guessed {
        todo.push(format!(
            "no health endpoint was found: the smoke check asks for {}; set [[smoke.checks]] path to your service's",
            choices.health_path
        ));
    }
    if choices.base_url.is_none() {
        todo.push(
            "set the PRODUCTION_API_URL secret to the URL the smoke gate checks (the service's public URL)".to_owned(),
        );
        if let Some(sample) = layout.env_sample.as_ref().filter(|_| {
            !layout
                .sample_names
                .iter()
                .any(|n| n == "PRODUCTION_API_URL")
        }) {
            todo.push(format!(
                "add `PRODUCTION_API_URL=` to {sample}: check-env's drift check wants every variable the configuration needs listed there"
            ));
        }
    }
    for finding in &layout.findings {
        if finding.level == Level::Warning {
            todo.push(format!("{}: {}", finding.file, finding.what));
        }
    }
    let (workflow, secrets, variables) = workflow(&choices);
    Scaffold {
        files: vec![
            ScaffoldFile {
                path: CONFIG_PATH.to_owned(),
                contents: config(&choices),
            },
            ScaffoldFile {
                path: WORKFLOW_PATH.to_owned(),
                contents: workflow,
            },
        ],
        secrets,
        variables,
        todo,
    }
}

/// `registry`, `owner` and image name of `ghcr.io/acme/provenance-api`.
fn split_repository(repository: &str) -> (Option<String>, Option<String>, String) {
    let parts: Vec<&str> = repository.split('/').collect();
    let is_host = |s: &str| s.contains('.') || s.contains(':') || s == "localhost";
    match parts.as_slice() {
        [name] => (None, None, (*name).to_owned()),
        [first, name] if is_host(first) => (Some((*first).to_owned()), None, (*name).to_owned()),
        [owner, name] => (None, Some((*owner).to_owned()), (*name).to_owned()),
        [first, middle @ .., name] if is_host(first) => (
            Some((*first).to_owned()),
            Some(middle.join("/")),
            (*name).to_owned(),
        ),
        _ => (None, None, parts.join("/")),
    }
}

fn choose(layout: &Layout) -> Choices<'_> {
    let uses = |v: &str| layout.workflows.variables.contains(v);
    let helm = layout.helm.is_some() || uses("ENABLE_HELM_DEPLOY") || uses("KUBE_CONFIG_DATA");
    let railway = layout.railway.is_some()
        || uses("ENABLE_RAILWAY_DEPLOY")
        || uses("RAILWAY_TOKEN")
        || uses("RAILWAY_API_TOKEN");
    let fly = layout.fly.is_some() || uses("FLY_API_TOKEN") || uses("ENABLE_FLY_DEPLOY");
    let mut registry = None;
    let mut owner = None;
    let mut services = Vec::new();
    if let Some(chart) = layout.helm.as_ref().filter(|c| !c.services.is_empty()) {
        for service in &chart.services {
            let image = match &service.repository {
                Some(repository) => {
                    let (r, o, name) = split_repository(repository);
                    if registry.is_none() && owner.is_none() {
                        registry = r;
                        owner = o;
                    }
                    name
                }
                None => format!("{}-{}", layout.app, service.name),
            };
            services.push(Service {
                name: service.name.clone(),
                image: Some(image),
            });
        }
    } else if let Some(fly_layout) = layout.fly.as_ref() {
        let app = fly_layout.app.clone().unwrap_or_else(|| layout.app.clone());
        registry = Some("registry.fly.io".to_owned());
        let groups = if fly_layout.process_groups.is_empty() {
            vec!["app".to_owned()]
        } else {
            fly_layout.process_groups.clone()
        };
        for group in groups {
            services.push(Service {
                name: group,
                image: Some(app.clone()),
            });
        }
    } else if layout.railway.is_some() {
        services.push(Service {
            name: layout
                .workflows
                .railway_service
                .clone()
                .unwrap_or_else(|| layout.app.clone()),
            image: None,
        });
    } else {
        services.push(Service {
            name: "app".to_owned(),
            image: Some(layout.app.clone()),
        });
    }
    let (health_path, health_path_guessed) = match layout.health_paths.first() {
        Some(path) => (path.clone(), false),
        None => ("/health".to_owned(), true),
    };
    let base_url = if uses("PRODUCTION_API_URL") {
        None
    } else {
        layout
            .fly
            .as_ref()
            .and_then(|f| f.app.as_ref())
            .map(|app| format!("https://{app}.fly.dev"))
    };
    Choices {
        layout,
        registry,
        owner,
        services,
        helm,
        railway,
        railway_from_repo: layout.railway.is_some(),
        railway_token: if uses("RAILWAY_API_TOKEN") && !uses("RAILWAY_TOKEN") {
            "RAILWAY_API_TOKEN"
        } else {
            "RAILWAY_TOKEN"
        },
        fly,
        health_path,
        health_path_guessed,
        base_url,
    }
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    // A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    serde_json::Value::from(text)
        .to_string()
        .replace('\u{7f}', "\\u007F")
}

/// A TOML key: bare when it can be.
fn key(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        text.to_owned()
    } else {
        quoted(text)
    }
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| quoted(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn config(c: &Choices<'_>) -> String {
    let layout = c.layout;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Written by `shipgate init` from what this repository holds; every key is documented in\n\
         # docs/configuration.md, and the variables named in comments override the file at run time.\n\
         # Check it with `shipgate check-env --config shipgate.toml` and `shipgate doctor`, then\n\
         # preview a deploy with `shipgate plan`."
    );
    for finding in &layout.findings {
        let mark = if finding.level == Level::Warning {
            "(check) "
        } else {
            ""
        };
        let _ = writeln!(w, "#   {}: {mark}{}", finding.file, finding.what);
    }
    let _ = writeln!(w, "app = {}", quoted(&layout.app));
    if c.uses("DEPLOY_ENVIRONMENT") {
        let _ = writeln!(
            w,
            "# environment: DEPLOY_ENVIRONMENT (else ENVIRONMENT) at run time."
        );
    } else {
        let _ = writeln!(
            w,
            "# ENVIRONMENT (or DEPLOY_ENVIRONMENT) overrides this at run time."
        );
        let _ = writeln!(w, "environment = \"production\"");
    }

    let _ = writeln!(w, "\n[image]");
    if let Some(registry) = &c.registry {
        let _ = writeln!(w, "registry = {}", quoted(registry));
    }
    if let Some(owner) = &c.owner {
        let _ = writeln!(w, "owner = {}", quoted(owner));
    }
    let _ = writeln!(
        w,
        "# tag: image_tag, else IMAGE_TAG, else GITHUB_SHA at run time: a commit SHA, never `latest`."
    );

    for (order, service) in c.services.iter().enumerate() {
        let _ = writeln!(w, "\n[services.{}]", key(&service.name));
        match &service.image {
            Some(image) => {
                let _ = writeln!(w, "image = {}", quoted(image));
            }
            None => {
                let _ = writeln!(
                    w,
                    "# Built by Railway from this repository: the release is the commit, not an image."
                );
            }
        }
        let _ = writeln!(w, "order = {}", order + 1);
    }

    if c.helm {
        let _ = writeln!(w, "\n[targets.helm]");
        if c.uses("ENABLE_HELM_DEPLOY") {
            let _ = writeln!(w, "# enabled: ENABLE_HELM_DEPLOY.");
        } else {
            let _ = writeln!(w, "enabled = true");
        }
        match &layout.helm {
            Some(chart) => {
                let _ = writeln!(w, "chart = {}", quoted(&chart.chart_dir));
                if !chart.services.is_empty() {
                    let paths: Vec<String> = chart
                        .services
                        .iter()
                        .map(|s| format!("{} = {}", key(&s.name), quoted(&s.tag_path)))
                        .collect();
                    let _ = writeln!(w, "image_tag_paths = {{ {} }}", paths.join(", "));
                }
            }
            None => {
                let _ = writeln!(
                    w,
                    "# chart: the chart's directory or reference (none was found in this repository)."
                );
            }
        }
        let _ = writeln!(
            w,
            "# release: HELM_RELEASE_NAME, namespace: HELM_NAMESPACE (both default to the app name).\n\
             # The cluster: KUBE_CONFIG_DATA (a kubeconfig, base64 or plain YAML)."
        );
    }

    if c.railway {
        let _ = writeln!(w, "\n[targets.railway]");
        if c.uses("ENABLE_RAILWAY_DEPLOY") {
            let _ = writeln!(w, "# enabled: ENABLE_RAILWAY_DEPLOY.");
        } else {
            let _ = writeln!(w, "enabled = true");
        }
        if c.railway_from_repo {
            let _ = writeln!(
                w,
                "# The service builds from its connected GitHub repository: shipgate deploys the exact\n\
                 # commit being shipped and checks that the deployment that went live built it.\n\
                 source = \"repo\""
            );
        }
        let seeded = c.uses("RAILWAY_API_SERVICE");
        if seeded {
            let _ = writeln!(
                w,
                "# services: RAILWAY_API_SERVICE (api) and RAILWAY_WORKER_SERVICE (worker)."
            );
        } else {
            let pairs: Vec<String> = c
                .services
                .iter()
                .map(|s| format!("{} = {}", key(&s.name), quoted(&s.name)))
                .collect();
            let _ = writeln!(
                w,
                "# Each shipgate service and its Railway service (name or ID).\nservices = {{ {} }}",
                pairs.join(", ")
            );
        }
        let _ = writeln!(
            w,
            "# project: RAILWAY_PROJECT_ID (or RAILWAY_PROJECT), environment: RAILWAY_ENVIRONMENT;\n\
             # the token: {} ({}).",
            c.railway_token,
            if c.railway_token == "RAILWAY_TOKEN" {
                "a project token"
            } else {
                "an account or workspace token"
            }
        );
    }

    if c.fly {
        let _ = writeln!(w, "\n[targets.fly]");
        if c.uses("ENABLE_FLY_DEPLOY") {
            let _ = writeln!(w, "# enabled: ENABLE_FLY_DEPLOY.");
        } else {
            let _ = writeln!(w, "enabled = true");
        }
        match layout.fly.as_ref().and_then(|f| f.app.as_ref()) {
            Some(app) => {
                let _ = writeln!(
                    w,
                    "app = {}   # FLY_APP overrides; the token is FLY_API_TOKEN.",
                    quoted(app)
                );
            }
            None => {
                let _ = writeln!(w, "# app: FLY_APP; the token is FLY_API_TOKEN.");
            }
        }
        if let Some(groups) = layout.fly.as_ref().map(|f| &f.process_groups)
            && !groups.is_empty()
        {
            let pairs: Vec<String> = groups
                .iter()
                .map(|g| format!("{} = {}", key(g), quoted(g)))
                .collect();
            let _ = writeln!(w, "process_groups = {{ {} }}", pairs.join(", "));
        }
    }

    let _ = writeln!(w, "\n[smoke]");
    if c.uses("ENABLE_DEPLOY_SMOKE_GATE") {
        let _ = writeln!(w, "# enabled: ENABLE_DEPLOY_SMOKE_GATE.");
    } else {
        let _ = writeln!(w, "enabled = true");
    }
    match &c.base_url {
        Some(url) => {
            let _ = writeln!(
                w,
                "base_url = {}   # PRODUCTION_API_URL overrides.",
                quoted(url)
            );
        }
        None => {
            let _ = writeln!(w, "# base_url: PRODUCTION_API_URL.");
        }
    }
    if c.uses("PRODUCTION_API_KEY") {
        let _ = writeln!(
            w,
            "# The API key: PRODUCTION_API_KEY, sent in PRODUCTION_API_KEY_HEADER (default X-API-Key)."
        );
    }
    let mut paths: Vec<&String> = vec![&c.health_path];
    paths.extend(layout.health_paths.iter().skip(1).take(3));
    for path in paths {
        let name = path.trim_matches('/').replace('/', "-");
        let _ = writeln!(w, "\n[[smoke.checks]]");
        let _ = writeln!(
            w,
            "name = {}",
            quoted(if name.is_empty() { "home" } else { &name })
        );
        let _ = writeln!(w, "path = {}", quoted(path));
        let _ = writeln!(w, "status = 200");
        let _ = writeln!(w, "max_latency = \"5s\"");
        if c.railway_from_repo {
            let _ = writeln!(
                w,
                "# Railway starts the new deployment after its build: wait up to 12 x 10 s for it.\n\
                 wait_until_healthy = true\n\
                 retry = {{ attempts = 12, interval = \"10s\" }}"
            );
        }
    }

    let _ = writeln!(w, "\n[rollback]");
    if c.uses("ENABLE_AUTO_ROLLBACK") {
        let _ = writeln!(w, "# auto: ENABLE_AUTO_ROLLBACK.");
    } else {
        let _ = writeln!(
            w,
            "# Roll back by itself when the smoke gate fails (ENABLE_AUTO_ROLLBACK overrides).\nauto = true"
        );
    }
    match &layout.workflows.publish_workflow {
        Some(workflow) => {
            let _ = writeln!(
                w,
                "# Where the last good release comes from: this ledger, then the last successful run of\n\
                 # the image-publishing workflow, then the platform's own history.\n\
                 sources = [\"ledger\", \"github-workflow\", \"provider\"]\n\
                 workflow = {}\n\
                 branch = \"main\"",
                quoted(workflow)
            );
        }
        None => {
            let _ = writeln!(
                w,
                "# The last good release: this ledger, then the platform's own history.\n\
                 sources = [\"ledger\", \"provider\"]"
            );
        }
    }

    if layout.workflows.waits_for_checks && !layout.workflows.ci_checks.is_empty() {
        let _ = writeln!(
            w,
            "\n[ci_gate]\n\
             # Deploy a commit only after these checks passed on it (names may be globs).\n\
             enabled = true\n\
             required_checks = {}\n\
             timeout = \"5m\"\n\
             interval = \"10s\"",
            list(&layout.workflows.ci_checks)
        );
    }

    if layout.make.migrate_prod {
        let secrets: Vec<String> = ["DATABASE_URL"]
            .into_iter()
            .filter(|n| {
                layout.sample_names.iter().any(|s| s == n)
                    || layout
                        .make
                        .prod_required
                        .as_ref()
                        .is_some_and(|r| r.iter().any(|s| s == n))
            })
            .map(str::to_owned)
            .collect();
        let _ = writeln!(
            w,
            "\n[migrate]\n\
             # The migration runs after the environment check and before the release goes live.\n\
             command = [\"make\", \"migrate-prod\"]"
        );
        if !secrets.is_empty() {
            let _ = writeln!(w, "secrets = {}", list(&secrets));
        }
    }

    if layout.workflows.pr_comment {
        let _ = writeln!(
            w,
            "\n[notify]\n# Comment the outcome on the pull request that shipped the commit.\ngithub_pr_comment = true"
        );
    }

    if let Some(schedule) = &layout.workflows.monitor_schedule {
        let _ = writeln!(
            w,
            "\n[[monitor.targets]]\n\
             # `shipgate monitor` runs the smoke checks on this schedule and opens one issue while\n\
             # they fail (the scheduled health workflow's job).\n\
             name = \"production-health\"\n\
             schedule = {}\n\
             smoke = true",
            quoted(schedule)
        );
    }

    let _ = writeln!(w, "\n[env]");
    if let Some(sample) = &layout.env_sample {
        let _ = writeln!(
            w,
            "# check-env also reports names the configuration needs that the sample lacks.\nsample = {}",
            quoted(sample)
        );
    }
    match (&layout.make.prod_required, &layout.env_sample) {
        (Some(required), _) => {
            let _ = writeln!(
                w,
                "# The Makefile's PROD_REQUIRED_ENV_VARS default; PROD_REQUIRED_ENV_VARS overrides it.\nrequired = {}",
                list(required)
            );
        }
        (None, Some(_)) if !layout.sample_names.is_empty() => {
            let _ = writeln!(
                w,
                "# Every name of the sample is required in production; PROD_REQUIRED_ENV_VARS overrides it.\nrequired = {}",
                list(&layout.sample_names)
            );
        }
        _ => {
            let _ = writeln!(
                w,
                "# Nothing beyond what the targets imply (their tokens and IDs); list more names here.\nrequired = []"
            );
        }
    }
    out
}

/// The workflow, and the secrets and variables it reads.
fn workflow(c: &Choices<'_>) -> (String, Vec<String>, Vec<String>) {
    let layout = c.layout;
    let mut secrets: BTreeSet<String> = BTreeSet::new();
    let mut variables: BTreeSet<String> = BTreeSet::new();
    let mut env: Vec<String> = Vec::new();
    let secret = |secrets: &mut BTreeSet<String>, name: &str, env: &mut Vec<String>| {
        if secrets.insert(name.to_owned()) {
            env.push(format!("      {name}: ${{{{ secrets.{name} }}}}"));
        }
    };
    let variable = |variables: &mut BTreeSet<String>, name: &str, env: &mut Vec<String>| {
        variables.insert(name.to_owned());
        env.push(format!("      {name}: ${{{{ vars.{name} }}}}"));
    };
    for name in shipgate_config::deploy_switches() {
        if c.uses(name) {
            variable(&mut variables, name, &mut env);
        }
    }
    if c.helm {
        for name in ["HELM_RELEASE_NAME", "HELM_NAMESPACE"] {
            if c.uses(name) {
                variable(&mut variables, name, &mut env);
            }
        }
        secret(&mut secrets, "KUBE_CONFIG_DATA", &mut env);
    }
    if c.railway {
        secret(&mut secrets, c.railway_token, &mut env);
        let project = if c.uses("RAILWAY_PROJECT") && !c.uses("RAILWAY_PROJECT_ID") {
            "RAILWAY_PROJECT"
        } else {
            "RAILWAY_PROJECT_ID"
        };
        variable(&mut variables, project, &mut env);
        variable(&mut variables, "RAILWAY_ENVIRONMENT", &mut env);
        for name in [
            "RAILWAY_API_SERVICE",
            "RAILWAY_WORKER_SERVICE",
            "RAILWAY_WORKSPACE",
        ] {
            if c.uses(name) {
                variable(&mut variables, name, &mut env);
            }
        }
    }
    if c.fly {
        secret(&mut secrets, "FLY_API_TOKEN", &mut env);
    }
    if c.base_url.is_none() {
        secret(&mut secrets, "PRODUCTION_API_URL", &mut env);
    }
    if c.uses("PRODUCTION_API_KEY") {
        secret(&mut secrets, "PRODUCTION_API_KEY", &mut env);
    }
    if c.uses("PRODUCTION_API_KEY_HEADER") {
        variable(&mut variables, "PRODUCTION_API_KEY_HEADER", &mut env);
    }
    let required: Vec<&String> = match &layout.make.prod_required {
        Some(required) => required.iter().collect(),
        None => layout.sample_names.iter().collect(),
    };
    if !required.is_empty() {
        env.push(
            "      # What check-env requires, injected at run time (never a file).".to_owned(),
        );
        for name in required {
            secret(&mut secrets, name, &mut env);
        }
    }

    let publish = layout
        .workflows
        .publish_workflow_name
        .as_ref()
        .filter(|_| layout.workflows.publish_workflow.is_some());
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# Written by `shipgate init`: deploy the pinned commit, gate it with smoke tests, and roll\n\
         # back by itself; docs/github-actions.md explains each part.\n\
         name: deploy\n\
         on:"
    );
    match publish {
        Some(name) => {
            let _ = writeln!(
                w,
                "  # After the images of a commit are published.\n  workflow_run:\n    workflows: [{}]\n    types: [completed]\n    branches: [main]",
                serde_json::Value::from(name.as_str())
            );
        }
        None => {
            let _ = writeln!(w, "  push:\n    branches: [main]");
        }
    }
    let tag = if publish.is_some() {
        "${{ inputs.image_tag || github.event.workflow_run.head_sha || github.sha }}"
    } else {
        "${{ inputs.image_tag || github.sha }}"
    };
    let _ = writeln!(
        w,
        "  workflow_dispatch:\n    inputs:\n      image_tag:\n        description: Commit SHA to deploy (default the triggering commit)\n        required: false\n\n\
         permissions:\n  contents: read\n  checks: read\n  statuses: read\n  actions: read\n  packages: read\n  deployments: write\n  pull-requests: write\n\n\
         concurrency:\n  group: deploy-production\n  cancel-in-progress: false\n\n\
         jobs:\n  deploy:\n    runs-on: ubuntu-latest"
    );
    if publish.is_some() {
        let _ = writeln!(
            w,
            "    if: github.event_name != 'workflow_run' || github.event.workflow_run.conclusion == 'success'"
        );
    }
    let _ = writeln!(
        w,
        "    environment: production\n    env:\n      ENVIRONMENT: production\n      image_tag: {tag}\n      GITHUB_TOKEN: ${{{{ github.token }}}}\n      # A shared ledger for every runner (optional; SQLite in the workspace otherwise).\n      SHIPGATE_LEDGER__URL: ${{{{ secrets.SHIPGATE_LEDGER_URL }}}}"
    );
    for line in &env {
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(
        w,
        "    steps:\n      - uses: actions/checkout@v5\n\n\
         \x20     - name: Check the production environment\n        uses: {ACTION}\n        with:\n          command: check-env"
    );
    let gate = if layout.workflows.waits_for_checks && !layout.workflows.ci_checks.is_empty() {
        "\n      # With [ci_gate] on, the deploy first waits for CI on this exact commit (after the lock)."
    } else {
        ""
    };
    let _ = writeln!(
        w,
        "{gate}\n      - name: Deploy, smoke-gate, roll back by itself\n        id: deploy\n        uses: {ACTION}\n        with:\n          command: deploy\n          image-tag: ${{{{ env.image_tag }}}}\n          args: --summary deploy-summary.json\n\n\
         \x20     - name: Keep the deploy summary\n        if: always()\n        uses: actions/upload-artifact@v6\n        with:\n          name: deploy-summary\n          path: deploy-summary.json\n          if-no-files-found: ignore"
    );
    secrets.insert("SHIPGATE_LEDGER_URL".to_owned());
    (
        out,
        secrets.into_iter().collect(),
        variables.into_iter().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_repositories_split_into_registry_owner_and_name() {
        assert_eq!(
            split_repository("ghcr.io/acme/provenance-api"),
            (
                Some("ghcr.io".to_owned()),
                Some("acme".to_owned()),
                "provenance-api".to_owned()
            )
        );
        assert_eq!(
            split_repository("acme/api"),
            (None, Some("acme".to_owned()), "api".to_owned())
        );
        assert_eq!(split_repository("api"), (None, None, "api".to_owned()));
        assert_eq!(
            split_repository("localhost:5000/api"),
            (Some("localhost:5000".to_owned()), None, "api".to_owned())
        );
    }

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(key("api"), "api");
        assert_eq!(key("my service"), "\"my service\"");
        assert_eq!(quoted("a\"b\u{7f}"), "\"a\\\"b\\u007F\"");
    }
}
