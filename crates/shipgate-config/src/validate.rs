//! Checks that need more than one key or more than a type: references between sections,
//! URLs, duplicate names, contradictory settings.

use std::collections::BTreeSet;

use shipgate_core::{ImageRef, ServiceName};

use crate::error::{ConfigProblem, Origin};
use crate::{Loaded, SmokeConfig, VarKind};

struct Problems<'a> {
    /// Where a key's value came from (file and line, variable, flag).
    locate: &'a dyn Fn(&str) -> Origin,
    list: Vec<ConfigProblem>,
}

impl Problems<'_> {
    fn add(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        let origin = (self.locate)(key);
        let line = match &origin {
            Origin::File { line, .. } => *line,
            _ => None,
        };
        self.list.push(ConfigProblem {
            origin,
            key: Some(key.to_owned()),
            line,
            message: message.into(),
            hint: Some(hint.into()),
        });
    }
}

/// The shortest `[ledger] lock_ttl` accepted, in seconds.
pub const MIN_LOCK_TTL_S: u64 = 10;
/// The shortest `[targets.fly] lease_ttl` accepted, in seconds.
pub const MIN_FLY_LEASE_TTL_S: u64 = 5;

pub(crate) fn validate(loaded: &Loaded) -> Vec<ConfigProblem> {
    let locate = |key: &str| loaded.origin_of(key).unwrap_or(Origin::Default);
    let mut p = Problems {
        locate: &locate,
        list: Vec::new(),
    };
    let config = &loaded.config;

    if let Some(app) = &config.app
        && app.parse::<ServiceName>().is_err()
    {
        p.add(
            "app",
            format!("`{app}` is not a valid app name"),
            "use 1-63 lowercase letters, digits or `-`",
        );
    }
    if let Some(registry) = &config.image.registry
        && let Err(err) = format!("{registry}/x").parse::<ImageRef>()
    {
        p.add(
            "image.registry",
            err.to_string(),
            "write a host such as `ghcr.io` or `localhost:5000`",
        );
    }
    if let Some(owner) = &config.image.owner
        && let Err(err) = format!("{owner}/x").parse::<ImageRef>()
    {
        p.add(
            "image.owner",
            err.to_string(),
            "owners are lowercase, e.g. the GitHub owner in lowercase",
        );
    }
    if let Some(tag) = &config.image.tag
        && let Err(err) = "x".parse::<ImageRef>().and_then(|i| i.with_tag(tag))
    {
        p.add(
            "image.tag",
            err.to_string(),
            "use a commit SHA or a release version as the tag",
        );
    }
    for (name, service) in &config.services {
        if let Some(image) = &service.image {
            match image.parse::<ImageRef>() {
                Ok(parsed) if parsed.tag().is_some() || parsed.digest().is_some() => p.add(
                    &format!("services.{name}.image"),
                    format!("`{image}` includes a tag or digest"),
                    "give the repository only; the tag comes from `image.tag`",
                ),
                Ok(_) => {}
                Err(err) => p.add(
                    &format!("services.{name}.image"),
                    err.to_string(),
                    "give a repository such as `provenance-api` or `ghcr.io/acme/provenance-api`",
                ),
            }
        }
    }

    let services: BTreeSet<&ServiceName> = config.services.keys().collect();
    let check_refs = |p: &mut Problems<'_>, prefix: &str, names: Vec<&ServiceName>| {
        if services.is_empty() {
            return;
        }
        for name in names {
            if !services.contains(name) {
                let known: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
                p.add(
                    &format!("{prefix}.{name}"),
                    format!("service `{name}` is not defined in [services]"),
                    format!("add [services.{name}] or use one of: {}", known.join(", ")),
                );
            }
        }
    };
    let targets = &config.targets;
    check_refs(
        &mut p,
        "targets.helm.image_tag_paths",
        targets.helm.image_tag_paths.keys().collect(),
    );
    check_refs(
        &mut p,
        "targets.railway.services",
        targets.railway.services.keys().collect(),
    );
    check_refs(
        &mut p,
        "targets.fly.process_groups",
        targets.fly.process_groups.keys().collect(),
    );
    check_refs(
        &mut p,
        "targets.local.services",
        targets.local.services.keys().collect(),
    );

    for (key, url) in [
        ("targets.railway.api_url", Some(&targets.railway.api_url)),
        ("targets.fly.api_url", Some(&targets.fly.api_url)),
        ("github.api_url", Some(&config.github.api_url)),
    ] {
        if let Some(url) = url {
            check_http_url(&mut p, key, url);
        }
    }
    if let Some(template) = &targets.fly.staged_url {
        // The placeholders stand for a machine id and the app name.
        let sample = template
            .replace("{machine_id}", "148e21ea7d2e89")
            .replace("{app}", "app");
        check_http_url(&mut p, "targets.fly.staged_url", &sample);
    }
    for (i, hook) in config.notify.webhooks.iter().enumerate() {
        check_http_url(&mut p, &format!("notify.webhooks.{i}.url"), &hook.url);
    }
    for (i, target) in config.monitor.targets.iter().enumerate() {
        if let Some(url) = &target.url {
            check_http_url(&mut p, &format!("monitor.targets.{i}.url"), url);
        }
    }

    if let Some(repo) = &config.github.repository {
        let ok = repo.split_once('/').is_some_and(|(owner, name)| {
            !owner.is_empty() && !name.is_empty() && !name.contains('/')
        });
        if !ok {
            p.add(
                "github.repository",
                format!("`{repo}` is not OWNER/NAME"),
                "write it like `acme/provenance`",
            );
        }
    }

    let ledger = &config.ledger.url;
    if !(ledger.starts_with("sqlite:")
        || ledger.starts_with("postgres://")
        || ledger.starts_with("postgresql://"))
    {
        p.add(
            "ledger.url",
            "the ledger URL must start with sqlite:, postgres:// or postgresql://",
            "use `sqlite://.shipgate/ledger.db` or a Postgres URL",
        );
    }

    validate_smoke(&mut p, "smoke.", &config.smoke);
    if let Some(migrate) = &config.migrate
        && migrate.command.is_empty()
    {
        p.add(
            "migrate.command",
            "the migration command is empty",
            "name the program and its arguments, e.g. `[\"./bin/migrate\", \"up\"]`",
        );
    }

    validate_canary(&mut p, config);

    // Durations that guard safety: a lock or lease that expires while its holder still works
    // lets a second deploy (or update) run beside the first.
    for (key, value, min, why) in [
        (
            "ledger.lock_ttl",
            config.ledger.lock_ttl,
            MIN_LOCK_TTL_S,
            "a running deploy renews its lock every third of it; shorter, a slow ledger lets a second deploy take the lock while the first still runs",
        ),
        (
            "targets.fly.lease_ttl",
            config.targets.fly.lease_ttl,
            MIN_FLY_LEASE_TTL_S,
            "shipgate refreshes each machine lease every third of it; shorter, another deployer can take the machine mid-update",
        ),
    ] {
        if value.as_duration() < std::time::Duration::from_secs(min) {
            p.add(
                key,
                format!("{value} is too short: the minimum is {min}s"),
                format!("set it to at least {min}s ({why})"),
            );
        }
    }

    check_count(
        &mut p,
        "monitor.concurrency",
        config.monitor.concurrency,
        MAX_MONITOR_CONCURRENCY,
    );
    let mut names = BTreeSet::new();
    for (i, target) in config.monitor.targets.iter().enumerate() {
        if !names.insert(target.name.as_str()) {
            p.add(
                &format!("monitor.targets.{i}.name"),
                format!("monitor target `{}` is defined twice", target.name),
                "give every target a unique name",
            );
        }
        check_count(
            &mut p,
            &format!("monitor.targets.{i}.open_after"),
            target.open_after,
            MAX_STREAK,
        );
        check_count(
            &mut p,
            &format!("monitor.targets.{i}.resolve_after"),
            target.resolve_after,
            MAX_STREAK,
        );
        if target.url.is_none() && !target.smoke {
            p.add(
                &format!("monitor.targets.{i}"),
                "a monitor target needs `url` or `smoke = true`",
                "add a health URL or reuse the [smoke] checks",
            );
        }
    }

    for (name, rule) in &config.env.vars {
        let key = format!("env.vars.{name}");
        if !is_variable_name(name) {
            p.add(
                &key,
                format!("`{name}` is not a valid variable name"),
                "use letters, digits and `_`, not starting with a digit",
            );
        }
        if rule.kind == VarKind::Enum && rule.values.is_empty() {
            p.add(
                &format!("{key}.values"),
                "kind `enum` needs a list of values",
                "add `values = [\"a\", \"b\"]`",
            );
        }
        if rule.kind != VarKind::Enum && !rule.values.is_empty() {
            p.add(
                &format!("{key}.values"),
                "`values` only applies to kind `enum`",
                "set `kind = \"enum\"` or remove `values`",
            );
        }
        if (rule.min.is_some() || rule.max.is_some()) && rule.kind != VarKind::Integer {
            p.add(
                &key,
                "`min`/`max` only apply to kind `integer`",
                "set `kind = \"integer\"` or remove them",
            );
        }
        if let (Some(min), Some(max)) = (rule.min, rule.max)
            && min > max
        {
            p.add(
                &format!("{key}.min"),
                format!("min {min} is greater than max {max}"),
                "swap them",
            );
        }
        let conditions = [
            rule.required_when.is_some(),
            rule.required_when_set.is_some(),
            rule.optional,
        ];
        if conditions.iter().filter(|c| **c).count() > 1 {
            p.add(
                &key,
                "`required_when`, `required_when_set` and `optional` exclude each other",
                "keep one of them",
            );
        }
    }
    if let Some(required) = &config.env.required {
        for (i, name) in required.iter().enumerate() {
            if !is_variable_name(name) {
                p.add(
                    &format!("env.required.{i}"),
                    format!("`{name}` is not a valid variable name"),
                    "separate names with spaces or commas; use letters, digits and `_`",
                );
            }
        }
    }

    let mut source_names = BTreeSet::new();
    for (i, source) in config.secrets.sources.iter().enumerate() {
        let name = crate::schema::secret_source_name(source);
        if !source_names.insert(name.to_owned()) {
            p.add(
                &format!("secrets.sources.{i}"),
                format!("two secret sources are named `{name}`"),
                "give one of them `name = \"…\"`",
            );
        }
    }
    for (key, over) in &config.secrets.keys {
        if !source_names.contains(over.source.as_str()) {
            p.add(
                &format!("secrets.keys.{key}.source"),
                format!("no secret source is named `{}`", over.source),
                format!(
                    "use one of: {}",
                    source_names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }

    p.list
}

fn check_http_url(p: &mut Problems<'_>, key: &str, raw: &str) {
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
        Ok(_) => p.add(
            key,
            format!("`{raw}` is not an http(s) URL with a host"),
            "write it like `https://api.example.com`",
        ),
        Err(err) => p.add(
            key,
            format!("`{raw}` is not a URL: {err}"),
            "write it like `https://api.example.com`",
        ),
    }
}

/// `[deploy] steps` and `[analysis]`: a step list that can run, thresholds that mean
/// something.
fn validate_canary(p: &mut Problems<'_>, config: &crate::Config) {
    let steps = &config.deploy.steps;
    if steps.is_empty() {
        p.add(
            "deploy.steps",
            "the canary step list is empty",
            "give the traffic shares in percent, increasing, e.g. `[10, 50, 100]`",
        );
    }
    if let Some(&bad) = steps.iter().find(|&&s| s == 0 || s > 100) {
        p.add(
            "deploy.steps",
            format!("a canary step of {bad}% is not a share of traffic"),
            "each step is 1 to 100 (percent), e.g. `[10, 50, 100]`",
        );
    } else if let Some(pair) = steps.windows(2).find(|w| w[1] <= w[0]) {
        p.add(
            "deploy.steps",
            format!(
                "the canary steps must increase: {}% comes after {}%",
                pair[1], pair[0]
            ),
            "list the shares from smallest to largest, e.g. `[10, 50, 100]`",
        );
    }
    let analysis = &config.analysis;
    if !(0.0..=100.0).contains(&analysis.max_error_percent) {
        p.add(
            "analysis.max_error_percent",
            format!("{} is not a percentage", analysis.max_error_percent),
            "give 0 to 100, e.g. `1` for at most 1 % of requests failing",
        );
    }
    if let Some(prometheus) = &analysis.prometheus {
        check_http_url(p, "analysis.prometheus.url", &prometheus.url);
        if prometheus.query.trim().is_empty() {
            p.add(
                "analysis.prometheus.query",
                "the Prometheus query is empty",
                "give a PromQL expression that yields one number, e.g. an error ratio",
            );
        }
        if !prometheus.max.is_finite() {
            p.add(
                "analysis.prometheus.max",
                "the largest passing value must be a number",
                "give the threshold the query's value must not exceed",
            );
        }
    }
}

/// True for names made of letters, digits and `_`, not starting with a digit.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The `[smoke]` checks that need no HTTP machinery; shared by `shipgate.toml` (prefix
/// `smoke.`) and standalone spec files (no prefix).
fn validate_smoke(p: &mut Problems<'_>, prefix: &str, smoke: &SmokeConfig) {
    if let Some(url) = &smoke.base_url {
        check_http_url(p, &format!("{prefix}base_url"), url);
    }
    if !is_header_name(&smoke.api_key_header) {
        p.add(
            &format!("{prefix}api_key_header"),
            format!("`{}` is not a valid HTTP header name", smoke.api_key_header),
            "use letters, digits and `-`, e.g. `X-API-Key`",
        );
    }
    check_count(
        p,
        &format!("{prefix}concurrency"),
        smoke.concurrency,
        MAX_SMOKE_CONCURRENCY,
    );
    let mut seen = BTreeSet::new();
    for (i, check) in smoke.checks.iter().enumerate() {
        if check.name.trim().is_empty() {
            p.add(
                &format!("{prefix}checks.{i}.name"),
                "a check needs a name: reports, progress lines and captures refer to it",
                "name it for what it checks, e.g. `name = \"health\"`",
            );
        }
        if !seen.insert(check.name.as_str()) {
            p.add(
                &format!("{prefix}checks.{i}.name"),
                format!("check name `{}` is used twice", check.name),
                "give every check a unique name",
            );
        }
        check_count(
            p,
            &format!("{prefix}checks.{i}.retry.attempts"),
            check.retry.attempts,
            MAX_ATTEMPTS,
        );
        check_count(
            p,
            &format!("{prefix}checks.{i}.samples"),
            check.samples,
            MAX_SAMPLES,
        );
    }
}

/// Most checks a smoke run sends at once.
pub const MAX_SMOKE_CONCURRENCY: u32 = 256;
/// Most attempts of one smoke check.
pub const MAX_ATTEMPTS: u32 = 100;
/// Most latency samples of one smoke check.
pub const MAX_SAMPLES: u32 = 10_000;
/// Most monitor checks one replica runs at once.
pub const MAX_MONITOR_CONCURRENCY: u32 = 1_024;
/// Most consecutive results before a monitor alert opens or resolves.
pub const MAX_STREAK: u32 = 1_000;

/// A count must be between 1 and `max`: 0 would do nothing, and a huge value is a typo that
/// would send billions of requests.
fn check_count(p: &mut Problems<'_>, key: &str, value: u32, max: u32) {
    if value == 0 || value > max {
        p.add(
            key,
            format!("must be between 1 and {max}, not {value}"),
            "1 means once (or one at a time)",
        );
    }
}

/// Validates a standalone smoke spec file.
pub(crate) fn validate_spec(
    spec: &SmokeConfig,
    locate: &dyn Fn(&str) -> Origin,
) -> Vec<ConfigProblem> {
    let mut p = Problems {
        locate,
        list: Vec::new(),
    };
    validate_smoke(&mut p, "", spec);
    p.list
}
