//! The whole `shipgate.toml` schema. Every key is documented in `docs/configuration.md`.
//!
//! Every table rejects unknown keys. Defaults live in the `default_*` functions below and in
//! `Default` impls, so that a missing key and the documented default can never disagree.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use shipgate_core::{HumanDuration, ServiceName};

/// The root of `shipgate.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Application name; the ledger, locks and default Helm release/namespace use it.
    pub app: Option<String>,
    /// Environment name (`production`, `staging`, `dev`…). Seed names: `DEPLOY_ENVIRONMENT`,
    /// then `ENVIRONMENT`. Unset or unknown is production-like.
    pub environment: Option<String>,
    /// How service images are named and tagged.
    #[serde(default)]
    pub image: ImageConfig,
    /// The services a deploy puts live, by name.
    #[serde(default)]
    pub services: BTreeMap<ServiceName, ServiceConfig>,
    /// Deploy targets; each is off unless enabled.
    #[serde(default)]
    pub targets: TargetsConfig,
    /// How a release reaches users.
    #[serde(default)]
    pub deploy: DeployConfig,
    /// What a canary step must show to go on.
    #[serde(default)]
    pub analysis: AnalysisConfig,
    /// Rules for `shipgate check-env`.
    #[serde(default)]
    pub env: EnvConfig,
    /// Where secret values come from.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// The post-deploy smoke gate.
    #[serde(default)]
    pub smoke: SmokeConfig,
    /// A migration run once before the rollout (seed 002's `migrate-prod`).
    pub migrate: Option<MigrateConfig>,
    /// Automatic rollback.
    #[serde(default)]
    pub rollback: RollbackConfig,
    /// The GitHub repository shipgate reports to.
    #[serde(default)]
    pub github: GithubConfig,
    /// Waiting for the commit's required GitHub checks before deploying.
    #[serde(default)]
    pub ci_gate: CiGateConfig,
    /// The deploy ledger (history, locks, outbox).
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Notifications after each run.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// Scheduled health checks and alerts.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// `[dashboard]`: the read-only web dashboard.
    #[serde(default)]
    pub dashboard: DashboardConfig,
}

/// `[image]`: images are `REGISTRY/OWNER/NAME:TAG` per service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// Registry host, e.g. `ghcr.io`.
    pub registry: Option<String>,
    /// Registry namespace (user or organisation), e.g. the GitHub owner.
    pub owner: Option<String>,
    /// The tag to deploy. Seed names: `image_tag` / `IMAGE_TAG`, then `GITHUB_SHA`.
    pub tag: Option<String>,
    /// Tags that move between builds, in addition to `latest` (e.g. `main`, `stable`).
    #[serde(default)]
    pub mutable_tags: Vec<String>,
    /// Allow a mutable tag in a production-like environment. Default false.
    #[serde(default)]
    pub allow_mutable: bool,
}

/// `[services.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Image repository name (`provenance-api`) or a full reference without tag
    /// (`ghcr.io/acme/provenance-api`). Default: `APP-SERVICE`.
    pub image: Option<String>,
    /// Deploy order: lower first, ties by name. Default 100.
    #[serde(default = "default_order")]
    pub order: u32,
}

fn default_order() -> u32 {
    100
}

/// `[targets]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsConfig {
    /// Helm/Kubernetes.
    #[serde(default)]
    pub helm: HelmTarget,
    /// Railway.
    #[serde(default)]
    pub railway: RailwayTarget,
    /// Fly.io Machines.
    #[serde(default)]
    pub fly: FlyTarget,
    /// Processes on this host.
    #[serde(default)]
    pub local: LocalTarget,
}

impl TargetsConfig {
    /// The names of the enabled targets, in a fixed order.
    pub fn enabled(&self) -> Vec<TargetKind> {
        [
            (TargetKind::Helm, self.helm.enabled),
            (TargetKind::Railway, self.railway.enabled),
            (TargetKind::Fly, self.fly.enabled),
            (TargetKind::Local, self.local.enabled),
        ]
        .into_iter()
        .filter_map(|(kind, on)| on.then_some(kind))
        .collect()
    }
}

/// A deploy target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// Helm/Kubernetes.
    Helm,
    /// Railway.
    Railway,
    /// Fly.io.
    Fly,
    /// The local process provider.
    Local,
}

impl TargetKind {
    /// The lowercase name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Helm => "helm",
            TargetKind::Railway => "railway",
            TargetKind::Fly => "fly",
            TargetKind::Local => "local",
        }
    }
}

/// How `helm upgrade` treats the values of the previous release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValuesStrategy {
    /// `--reset-then-reuse-values`: chart defaults, then the previous values, then ours.
    #[default]
    ResetThenReuse,
    /// `--reuse-values`.
    Reuse,
    /// `--reset-values`: only chart defaults and ours.
    Reset,
}

/// `[targets.helm]`. Seed names: `ENABLE_HELM_DEPLOY`, `HELM_RELEASE_NAME`, `HELM_NAMESPACE`,
/// `HELM_BIN`; the kubeconfig comes from `KUBE_CONFIG_DATA` (base64 or plain YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmTarget {
    /// Deploy with Helm. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Release name. Default: the app name.
    pub release: Option<String>,
    /// Namespace. Default: the app name.
    pub namespace: Option<String>,
    /// Chart path or `repo/chart` reference.
    pub chart: Option<String>,
    /// Chart version, for repository charts.
    pub chart_version: Option<String>,
    /// `-f` values files, in order.
    #[serde(default)]
    pub values_files: Vec<PathBuf>,
    /// Value path of each service's image tag. Default `SERVICE.image.tag`.
    #[serde(default)]
    pub image_tag_paths: BTreeMap<ServiceName, String>,
    /// How previous values are treated. Default `reset-then-reuse`.
    #[serde(default)]
    pub values_strategy: ValuesStrategy,
    /// Variable that holds the kubeconfig (base64 or plain YAML). Default `KUBE_CONFIG_DATA`.
    #[serde(default = "default_kubeconfig_env")]
    pub kubeconfig_env: String,
    /// A kubeconfig file, used when the variable is not set.
    pub kubeconfig_path: Option<PathBuf>,
    /// Kubeconfig context. Default: the kubeconfig's current context.
    pub context: Option<String>,
    /// The helm executable. Default: `helm` on PATH.
    pub helm_bin: Option<PathBuf>,
    /// How long one upgrade and rollout may take. Default 10m.
    #[serde(default = "default_helm_timeout")]
    pub timeout: HumanDuration,
    /// Ask helm itself to roll back a failed upgrade (`--rollback-on-failure` / `--atomic`).
    /// Default false: shipgate rolls back after its own smoke gate.
    #[serde(default)]
    pub helm_rollback_on_failure: bool,
    /// Blue-green and canary strategies: the Argo Rollouts `Rollout` the chart renders (a
    /// blue-green Rollout with `autoPromotionEnabled: false`), which shipgate promotes or
    /// aborts. Unset: Helm deploys rolling even when a staged strategy is asked for.
    pub rollout: Option<String>,
}

fn default_kubeconfig_env() -> String {
    "KUBE_CONFIG_DATA".to_owned()
}

fn default_helm_timeout() -> HumanDuration {
    HumanDuration::from_secs(600)
}

impl Default for HelmTarget {
    fn default() -> Self {
        HelmTarget {
            enabled: false,
            release: None,
            namespace: None,
            chart: None,
            chart_version: None,
            values_files: Vec::new(),
            image_tag_paths: BTreeMap::new(),
            values_strategy: ValuesStrategy::default(),
            kubeconfig_env: default_kubeconfig_env(),
            kubeconfig_path: None,
            context: None,
            helm_bin: None,
            timeout: default_helm_timeout(),
            helm_rollback_on_failure: false,
            rollout: None,
        }
    }
}

/// `[targets.railway]`. Seed names: `ENABLE_RAILWAY_DEPLOY`, `RAILWAY_PROJECT`
/// (or `RAILWAY_PROJECT_ID`), `RAILWAY_ENVIRONMENT`, `RAILWAY_API_SERVICE`,
/// `RAILWAY_WORKER_SERVICE`, `RAILWAY_WORKSPACE`; the token is `RAILWAY_TOKEN` (project
/// token) or `RAILWAY_API_TOKEN` (account or workspace token), never both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RailwayTarget {
    /// Deploy to Railway. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Project ID or name.
    pub project: Option<String>,
    /// Environment ID or name.
    pub environment: Option<String>,
    /// Workspace ID or name, to disambiguate project names.
    pub workspace: Option<String>,
    /// Railway service (ID or name) for each shipgate service.
    #[serde(default)]
    pub services: BTreeMap<ServiceName, String>,
    /// GraphQL endpoint. Default `https://backboard.railway.com/graphql/v2`.
    #[serde(default = "default_railway_api")]
    pub api_url: String,
    /// How long one deployment may take to become healthy. Default 15m.
    #[serde(default = "default_platform_timeout")]
    pub timeout: HumanDuration,
    /// Time between deployment status polls. Default 5s (what Railway's CLI uses).
    #[serde(default = "default_railway_poll")]
    pub poll_interval: HumanDuration,
    /// How long a deployment must stay live (and be the service's active deployment) before
    /// it counts as healthy: Railway deployments can crash moments after `SUCCESS`. Default
    /// 20s.
    #[serde(default = "default_railway_stable_for")]
    pub stable_for: HumanDuration,
    /// Disconnect a GitHub-sourced service's repo and deploy the image instead. Default false:
    /// such a service is refused with guidance.
    #[serde(default)]
    pub switch_source_to_image: bool,
    /// What a deploy ships: `image` (default; the pinned image is set as the service's
    /// source) or `repo` (the service builds from its connected GitHub repository; the
    /// release's tag is the commit SHA Railway builds and deploys).
    #[serde(default)]
    pub source: RailwaySource,
}

/// What a Railway deploy ships.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RailwaySource {
    /// A pinned container image, set as the service's source.
    #[default]
    Image,
    /// A commit of the service's connected GitHub repository, built by Railway.
    Repo,
}

fn default_railway_poll() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn default_railway_stable_for() -> HumanDuration {
    HumanDuration::from_secs(20)
}

fn default_railway_api() -> String {
    "https://backboard.railway.com/graphql/v2".to_owned()
}

fn default_platform_timeout() -> HumanDuration {
    HumanDuration::from_secs(900)
}

impl Default for RailwayTarget {
    fn default() -> Self {
        RailwayTarget {
            enabled: false,
            project: None,
            environment: None,
            workspace: None,
            services: BTreeMap::new(),
            api_url: default_railway_api(),
            timeout: default_platform_timeout(),
            poll_interval: default_railway_poll(),
            stable_for: default_railway_stable_for(),
            switch_source_to_image: false,
            source: RailwaySource::Image,
        }
    }
}

/// `[targets.fly]`. Seed names: `ENABLE_FLY_DEPLOY`, `FLY_APP`; the token is `FLY_API_TOKEN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlyTarget {
    /// Deploy to Fly.io. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Fly app name.
    pub app: Option<String>,
    /// Fly process group for each shipgate service. Default: the service name.
    #[serde(default)]
    pub process_groups: BTreeMap<ServiceName, String>,
    /// Machines API base URL. Default `https://api.machines.dev`.
    #[serde(default = "default_fly_api")]
    pub api_url: String,
    /// How long one rollout may take. Default 15m.
    #[serde(default = "default_platform_timeout")]
    pub timeout: HumanDuration,
    /// `rolling` (the first machine alone, then batches) or `immediate` (all at once; each
    /// machine is still verified). Default rolling.
    #[serde(default)]
    pub strategy: FlyStrategy,
    /// Rolling batch size: a fraction of the group below 1, or a machine count. Default 0.33
    /// (flyctl's).
    #[serde(default = "default_max_unavailable")]
    pub max_unavailable: f64,
    /// Lease TTL on each machine while it is updated (refreshed every third). Default 13s.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: HumanDuration,
    /// Blue-green and canary: how this runner reaches one machine directly, to test a staged
    /// (cordoned) release before it takes traffic: a URL with `{machine_id}` and `{app}`, e.g.
    /// `http://{machine_id}.vm.{app}.internal:8080` over Fly's private network (`fly
    /// wireguard`). Unset: Fly deploys rolling even when a staged strategy is asked for.
    pub staged_url: Option<String>,
}

/// How Fly machines are updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlyStrategy {
    /// The first machine alone, then batches of `max_unavailable`.
    #[default]
    Rolling,
    /// Every machine at once.
    Immediate,
}

fn default_max_unavailable() -> f64 {
    0.33
}

fn default_lease_ttl() -> HumanDuration {
    HumanDuration::from_secs(13)
}

fn default_fly_api() -> String {
    "https://api.machines.dev".to_owned()
}

impl Default for FlyTarget {
    fn default() -> Self {
        FlyTarget {
            enabled: false,
            app: None,
            process_groups: BTreeMap::new(),
            api_url: default_fly_api(),
            timeout: default_platform_timeout(),
            strategy: FlyStrategy::Rolling,
            max_unavailable: default_max_unavailable(),
            lease_ttl: default_lease_ttl(),
            staged_url: None,
        }
    }
}

/// `[targets.local]`: services run as processes on this host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalTarget {
    /// Deploy locally. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Where pids, ports and history live. Default `.shipgate/local`.
    #[serde(default = "default_local_state_dir")]
    pub state_dir: PathBuf,
    /// One process per service.
    #[serde(default)]
    pub services: BTreeMap<ServiceName, LocalService>,
    /// How long a new process may take to become healthy. Default 30s.
    #[serde(default = "default_local_timeout")]
    pub timeout: HumanDuration,
}

fn default_local_state_dir() -> PathBuf {
    PathBuf::from(".shipgate/local")
}

fn default_local_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl Default for LocalTarget {
    fn default() -> Self {
        LocalTarget {
            enabled: false,
            state_dir: default_local_state_dir(),
            services: BTreeMap::new(),
            timeout: default_local_timeout(),
        }
    }
}

/// `[targets.local.services.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalService {
    /// Program and arguments; `{image}`, `{tag}` and `{port}` are substituted.
    pub command: Vec<String>,
    /// The stable port clients use.
    pub port: u16,
    /// Health path polled on the new process before traffic moves. Default `/healthz`.
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// Extra environment for the process (values are not secrets; use `[secrets]`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_health_path() -> String {
    "/healthz".to_owned()
}

/// `[env]`: what `shipgate check-env` requires.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// The required set for production-like environments. Unset: every name of the sample
    /// (`sample`), else what the configuration implies.
    /// Seed name: `PROD_REQUIRED_ENV_VARS` (space- or comma-separated).
    pub required: Option<Vec<String>>,
    /// A `.env.sample` to keep in sync with the required set.
    pub sample: Option<PathBuf>,
    /// Typed and conditional rules, by variable name.
    #[serde(default)]
    pub vars: BTreeMap<String, VarRule>,
}

/// `[env.vars.NAME]`: a rule for one variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarRule {
    /// What the value must look like. Default `non-empty`.
    #[serde(default)]
    pub kind: VarKind,
    /// Allowed values, for `kind = "enum"`.
    #[serde(default)]
    pub values: Vec<String>,
    /// Lower bound, for `kind = "integer"`.
    pub min: Option<i64>,
    /// Upper bound, for `kind = "integer"`.
    pub max: Option<i64>,
    /// Required only when this variable is true (`true`, `1`, `yes`, `on`).
    pub required_when: Option<String>,
    /// Required only when this variable is set and not empty.
    pub required_when_set: Option<String>,
    /// Never required; checked only when present. Default false.
    #[serde(default)]
    pub optional: bool,
    /// Shown in the fix hint.
    pub description: Option<String>,
}

/// The value types `check-env` knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VarKind {
    /// Any value that is not empty or whitespace.
    #[default]
    NonEmpty,
    /// An absolute URL with a scheme and a host.
    Url,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// An integer, within `min`/`max` when given.
    Integer,
    /// A TCP port, 1-65535.
    Port,
    /// One of `values`.
    Enum,
    /// Standard base64 (padding optional).
    Base64,
    /// Base64 of an Ed25519 key: a 32-byte seed or a 64-byte keypair.
    Ed25519Key,
    /// A kubeconfig, base64-encoded or plain YAML.
    Kubeconfig,
    /// A pinned container image reference.
    ImageRef,
}

/// `[secrets]`: ordered secret sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Sources in precedence order (first that has a key wins). Default: the process
    /// environment only.
    #[serde(default = "default_secret_sources")]
    pub sources: Vec<SecretSourceConfig>,
    /// Per-key overrides: which source holds a key, and under which name.
    #[serde(default)]
    pub keys: BTreeMap<String, SecretKeyOverride>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            sources: default_secret_sources(),
            keys: BTreeMap::new(),
        }
    }
}

fn default_secret_sources() -> Vec<SecretSourceConfig> {
    vec![SecretSourceConfig::Env { name: None }]
}

/// One secret source.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SecretSourceConfig {
    /// The process environment (runtime injection).
    Env {
        /// Name used in reports and key overrides. Default `env`.
        name: Option<String>,
    },
    /// One file per key in a directory (`/run/secrets`, a mounted Kubernetes Secret).
    Dir {
        /// Name used in reports. Default `dir`.
        name: Option<String>,
        /// The directory.
        path: PathBuf,
    },
    /// A dotenv file; refused in production-like environments.
    Dotenv {
        /// Name used in reports. Default `dotenv`.
        name: Option<String>,
        /// The file.
        path: PathBuf,
    },
    /// A Kubernetes Secret.
    Kubernetes {
        /// Name used in reports. Default `kubernetes`.
        name: Option<String>,
        /// Namespace.
        namespace: String,
        /// Secret name.
        secret: String,
        /// Variable holding the kubeconfig (plain YAML or base64). Default `KUBE_CONFIG_DATA`.
        #[serde(default = "default_kubeconfig_env")]
        kubeconfig_env: String,
    },
    /// HashiCorp Vault KV version 2.
    Vault {
        /// Name used in reports. Default `vault`.
        name: Option<String>,
        /// Vault address, e.g. `https://vault.example.com:8200`.
        address: String,
        /// KV v2 mount. Default `secret`.
        #[serde(default = "default_vault_mount")]
        mount: String,
        /// Secret path under the mount.
        path: String,
        /// Vault Enterprise namespace.
        namespace: Option<String>,
        /// Variable holding the Vault token. Default `VAULT_TOKEN`.
        #[serde(default = "default_vault_token_env")]
        token_env: String,
        /// Read this version instead of the latest.
        version: Option<u64>,
    },
    /// AWS Secrets Manager.
    AwsSecretsManager {
        /// Name used in reports. Default `aws`.
        name: Option<String>,
        /// Secret ID or ARN.
        secret_id: String,
        /// Region. Default: the SDK's region chain.
        region: Option<String>,
        /// Endpoint override (tests, VPC endpoints).
        endpoint: Option<String>,
    },
}

fn default_vault_mount() -> String {
    "secret".to_owned()
}

fn default_vault_token_env() -> String {
    "VAULT_TOKEN".to_owned()
}

/// `[secrets.keys.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyOverride {
    /// The source (by name) that holds this key.
    pub source: String,
    /// The key's name in that source (a file name, a JSON field, a Vault field).
    pub field: Option<String>,
}

/// `[smoke]`: the gate after each deploy. Seed names: `ENABLE_DEPLOY_SMOKE_GATE`,
/// `PRODUCTION_API_URL`, `PRODUCTION_API_KEY`, `PRODUCTION_API_KEY_HEADER`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeConfig {
    /// Run the gate after deploying. Default false (the seed default).
    #[serde(default)]
    pub enabled: bool,
    /// Base URL the check paths are joined to.
    pub base_url: Option<String>,
    /// Secret holding the API key sent with every check. Default `PRODUCTION_API_KEY`.
    #[serde(default = "default_api_key_secret")]
    pub api_key_secret: String,
    /// Header carrying the API key. Default `X-API-Key`.
    #[serde(default = "default_api_key_header")]
    pub api_key_header: String,
    /// Headers sent with every check.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How many independent checks run at once. Default 8.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Per-request timeout unless a check sets its own. Default 10s.
    #[serde(default = "default_smoke_timeout")]
    pub timeout: HumanDuration,
    /// Allow `http://` targets and invalid certificates in production-like environments.
    #[serde(default)]
    pub allow_insecure: bool,
    /// The checks, run in order of their captures and concurrently otherwise.
    #[serde(default)]
    pub checks: Vec<SmokeCheck>,
}

fn default_api_key_secret() -> String {
    "PRODUCTION_API_KEY".to_owned()
}

fn default_api_key_header() -> String {
    "X-API-Key".to_owned()
}

fn default_concurrency() -> u32 {
    8
}

fn default_smoke_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

impl Default for SmokeConfig {
    fn default() -> Self {
        SmokeConfig {
            enabled: false,
            base_url: None,
            api_key_secret: default_api_key_secret(),
            api_key_header: default_api_key_header(),
            headers: BTreeMap::new(),
            concurrency: default_concurrency(),
            timeout: default_smoke_timeout(),
            allow_insecure: false,
            checks: Vec::new(),
        }
    }
}

/// `[[smoke.checks]]`: one request and what its response must satisfy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// Unique name.
    pub name: String,
    /// HTTP method. Default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path joined to the base URL.
    pub path: String,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON request body.
    pub json: Option<serde_json::Value>,
    /// A text request body.
    pub body: Option<String>,
    /// Expected status: a code (`200`), a list (`[200, 204]`) or a class (`"2xx"`).
    /// Default `"2xx"`.
    pub status: Option<StatusExpectation>,
    /// Response assertions.
    #[serde(default)]
    pub asserts: Vec<AssertSpec>,
    /// Slowest acceptable response (time to the full body).
    pub max_latency: Option<HumanDuration>,
    /// Slowest acceptable 95th percentile when `samples > 1`.
    pub max_p95_latency: Option<HumanDuration>,
    /// Request timeout. Default: `[smoke] timeout`.
    pub timeout: Option<HumanDuration>,
    /// A failing critical check fails the gate. Default true.
    #[serde(default = "default_true")]
    pub critical: bool,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Treat assertion failures as "not ready yet" and retry them too (seed 004's health
    /// wait). Default false.
    #[serde(default)]
    pub wait_until_healthy: bool,
    /// Run the check this many times and judge latency on p50/p95. Default 1.
    #[serde(default = "default_samples")]
    pub samples: u32,
    /// Values taken from the JSON response for later checks: `{ token = "$.access_token" }`.
    #[serde(default)]
    pub captures: BTreeMap<String, String>,
}

impl SmokeCheck {
    /// A `GET` of `path` with every other field at its default, named after the path.
    pub fn get(path: impl Into<String>) -> SmokeCheck {
        let path = path.into();
        SmokeCheck {
            name: path.clone(),
            method: default_method(),
            path,
            headers: BTreeMap::new(),
            json: None,
            body: None,
            status: None,
            asserts: Vec::new(),
            max_latency: None,
            max_p95_latency: None,
            timeout: None,
            critical: true,
            retry: RetryPolicy::default(),
            wait_until_healthy: false,
            samples: default_samples(),
            captures: BTreeMap::new(),
        }
    }
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_samples() -> u32 {
    1
}

/// An expected HTTP status: `200`, `[200, 204]`, `"2xx"` or `"200-299"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusExpectation {
    /// Exactly this code.
    Code(u16),
    /// Any of these codes.
    AnyOf(Vec<u16>),
    /// A class such as `2xx` or a range such as `200-299`.
    Pattern(String),
}

/// What a status may be written as, for errors (rather than serde's "did not match any
/// variant of untagged enum").
const STATUS_FORMS: &str =
    "a status code (200), a list of codes ([200, 204]), a class (\"2xx\") or a range (\"200-299\")";

impl<'de> Deserialize<'de> for StatusExpectation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        fn code<E: serde::de::Error>(value: u64) -> Result<u16, E> {
            u16::try_from(value)
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| E::custom(format!("{value} is not an HTTP status code (100-599)")))
        }
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StatusExpectation;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(STATUS_FORMS)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                code(v).map(StatusExpectation::Code)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                let v = u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not an HTTP status code (100-599)")))?;
                self.visit_u64(v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StatusExpectation::Pattern(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut codes = Vec::new();
                while let Some(value) = seq.next_element::<serde_json::Value>()? {
                    let value = value.as_u64().ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "a list of statuses holds codes such as [200, 204], not {value}"
                        ))
                    })?;
                    codes.push(code(value)?);
                }
                Ok(StatusExpectation::AnyOf(codes))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[[smoke.checks.asserts]]`: exactly one subject and one predicate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertSpec {
    /// Subject: a JSONPath into the response body.
    pub jsonpath: Option<String>,
    /// Subject: a response header.
    pub header: Option<String>,
    /// Subject: the body as text.
    #[serde(default)]
    pub body: bool,
    /// Predicate: equals this value: a string, number, boolean, array or table compared as
    /// JSON; a string also matches a scalar whose text is that string (`"200"` and `200`).
    pub equals: Option<serde_json::Value>,
    /// Predicate: the subject exists (or not, with `false`).
    pub exists: Option<bool>,
    /// Predicate: matches this regular expression.
    pub matches: Option<String>,
    /// Predicate: contains this text.
    pub contains: Option<String>,
    /// Predicate: the body is at most this many bytes.
    pub max_bytes: Option<u64>,
}

/// Retry policy of a check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts, the first included. Default 1.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait between attempts. Default 1s.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// `constant` or `exponential` (with jitter). Default `constant`.
    #[serde(default)]
    pub backoff: Backoff,
}

fn default_attempts() -> u32 {
    1
}

fn default_interval() -> HumanDuration {
    HumanDuration::from_secs(1)
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: default_attempts(),
            interval: default_interval(),
            backoff: Backoff::default(),
        }
    }
}

/// Backoff between attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backoff {
    /// The same interval each time.
    #[default]
    Constant,
    /// Doubling intervals with jitter.
    Exponential,
}

/// `[migrate]`: a command run once, after the deploy lock is taken and before any target
/// changes; its failure stops the deploy with nothing live changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateConfig {
    /// Program and arguments; `{image}` and `{tag}` are substituted (the first service's
    /// image).
    pub command: Vec<String>,
    /// How long it may run. Default 10m.
    #[serde(default = "default_migrate_timeout")]
    pub timeout: HumanDuration,
    /// Names of secrets (resolved from `[secrets]`) passed to it as environment variables.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Run it as a Kubernetes Job (`command` is the container's command) instead of on the
    /// deploy runner; the cluster comes from the Helm target's kubeconfig settings.
    pub kubernetes: Option<MigrateJobConfig>,
}

/// `[migrate.kubernetes]`: the migration as a Kubernetes Job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateJobConfig {
    /// Namespace. Default: the Helm target's namespace, else the app.
    pub namespace: Option<String>,
    /// Image. Default: the first service's image (the release being deployed).
    pub image: Option<String>,
    /// A Kubernetes Secret whose keys become the container's environment (`envFrom`): the
    /// values stay in the cluster.
    pub env_from_secret: Option<String>,
}

fn default_migrate_timeout() -> HumanDuration {
    HumanDuration::from_secs(600)
}

/// `[deploy]`: how a release reaches users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// `rolling` (default): the release goes live, then the smoke gate runs. `bluegreen`: the
    /// release is staged beside the live one and smoke-tested before any user request reaches
    /// it; then all traffic moves, the gate runs again, and a failure moves traffic back to
    /// the old release at once. `canary`: staged and smoke-tested the same way, then traffic
    /// moves in `steps`, with an analysis after each `pause`; any failed analysis moves
    /// traffic back at once. Targets that cannot stage deploy rolling (the summary says so).
    #[serde(default)]
    pub strategy: DeployStrategy,
    /// Canary: the share of user traffic (percent) at each step, increasing, each 1 to 100.
    /// After the last step, traffic moves to 100 % if it is not there yet. Default
    /// `[10, 50, 100]`.
    #[serde(default = "default_canary_steps")]
    pub steps: Vec<u8>,
    /// Canary: how long each step runs before its analysis. Default 30s.
    #[serde(default = "default_canary_pause")]
    pub pause: HumanDuration,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            strategy: DeployStrategy::default(),
            steps: default_canary_steps(),
            pause: default_canary_pause(),
        }
    }
}

fn default_canary_steps() -> Vec<u8> {
    vec![10, 50, 100]
}

fn default_canary_pause() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// A deploy strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployStrategy {
    /// Live first, then gated.
    #[default]
    Rolling,
    /// Staged and gated before traffic, then switched at once.
    Bluegreen,
    /// Staged and gated before traffic, then moved in steps with an analysis after each.
    Canary,
}

/// `[analysis]`: what a canary step must show to go on. Every source that is configured must
/// pass; user traffic counts only where the platform observes it (the local router).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The most user requests (percent) the canary may fail (5xx or no answer) during a step.
    /// Default 1.
    #[serde(default = "default_max_error_percent")]
    pub max_error_percent: f64,
    /// The slowest 95th-percentile latency of the canary's user requests during a step
    /// (e.g. `500ms`). Unset: latency is reported, not judged.
    pub max_p95: Option<HumanDuration>,
    /// Fewer user requests than this on the canary during a step: the traffic check cannot
    /// judge, and says so (the smoke and Prometheus checks still decide). Default 20.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// A Prometheus query judged after each step.
    pub prometheus: Option<PrometheusAnalysis>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            max_error_percent: default_max_error_percent(),
            max_p95: None,
            min_requests: default_min_requests(),
            prometheus: None,
        }
    }
}

fn default_max_error_percent() -> f64 {
    1.0
}

fn default_min_requests() -> u64 {
    20
}

/// `[analysis.prometheus]`: an instant query whose value must not exceed `max`. No value or
/// an error fails the step (closed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusAnalysis {
    /// The server's base URL (`http://prometheus:9090`).
    pub url: String,
    /// A PromQL expression giving one number (the first sample of a vector is used).
    pub query: String,
    /// The largest value that passes.
    pub max: f64,
    /// Timeout of the query, retries included. Default 10s.
    #[serde(default = "default_prometheus_timeout")]
    pub timeout: HumanDuration,
}

fn default_prometheus_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// `[rollback]`. Seed name: `ENABLE_AUTO_ROLLBACK`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackConfig {
    /// Roll back automatically when the gate fails. Default false (the seed default).
    #[serde(default)]
    pub auto: bool,
    /// Where candidates come from, in order. Default `["ledger", "github-workflow",
    /// "provider"]`.
    #[serde(default = "default_rollback_sources")]
    pub sources: Vec<RollbackSource>,
    /// Workflow file whose previous successful run names the candidate SHA
    /// (seed 000: `publish-images.yml`).
    pub workflow: Option<String>,
    /// Branch of that workflow's runs. Default: the repository's default branch.
    pub branch: Option<String>,
    /// Check that the candidate image exists in its registry. Default true.
    #[serde(default = "default_true")]
    pub verify_image: bool,
    /// Smoke-test the rolled-back release. Default true.
    #[serde(default = "default_true")]
    pub smoke: bool,
}

fn default_rollback_sources() -> Vec<RollbackSource> {
    vec![
        RollbackSource::Ledger,
        RollbackSource::GithubWorkflow,
        RollbackSource::Provider,
    ]
}

impl Default for RollbackConfig {
    fn default() -> Self {
        RollbackConfig {
            auto: false,
            sources: default_rollback_sources(),
            workflow: None,
            branch: None,
            verify_image: true,
            smoke: true,
        }
    }
}

/// A rollback candidate source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackSource {
    /// The ledger's last known good release.
    Ledger,
    /// The previous successful run of `rollback.workflow`.
    GithubWorkflow,
    /// The platform's own release history.
    Provider,
}

/// `[github]`. Seed names: `GITHUB_REPOSITORY`, `GITHUB_API_URL`; the token is `GITHUB_TOKEN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// `OWNER/NAME`.
    pub repository: Option<String>,
    /// API base URL. Default `https://api.github.com`.
    #[serde(default = "default_github_api")]
    pub api_url: String,
    /// The live app's URL, shown on GitHub deployments (`[notify] github_deployments`).
    pub environment_url: Option<String>,
}

fn default_github_api() -> String {
    "https://api.github.com".to_owned()
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            repository: None,
            api_url: default_github_api(),
            environment_url: None,
        }
    }
}

/// `[ci_gate]`: wait for the commit's required checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiGateConfig {
    /// Gate deploys on CI. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Required check names; exact or glob (`Run Tests (shards *)`).
    #[serde(default)]
    pub required_checks: Vec<String>,
    /// How long to wait. Default 5m.
    #[serde(default = "default_ci_timeout")]
    pub timeout: HumanDuration,
    /// Poll interval. Default 10s.
    #[serde(default = "default_ci_interval")]
    pub interval: HumanDuration,
    /// Count `neutral` conclusions as passing. Default false.
    #[serde(default)]
    pub allow_neutral: bool,
    /// Count `skipped` conclusions as passing. Default false.
    #[serde(default)]
    pub allow_skipped: bool,
}

fn default_ci_timeout() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn default_ci_interval() -> HumanDuration {
    HumanDuration::from_secs(10)
}

impl Default for CiGateConfig {
    fn default() -> Self {
        CiGateConfig {
            enabled: false,
            required_checks: Vec::new(),
            timeout: default_ci_timeout(),
            interval: default_ci_interval(),
            allow_neutral: false,
            allow_skipped: false,
        }
    }
}

/// `[ledger]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// `sqlite://PATH` or `postgres://…`. Default `sqlite://.shipgate/ledger.db`.
    #[serde(default = "default_ledger_url")]
    pub url: String,
    /// How long a deploy waits for the lock. Default 10m.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: HumanDuration,
    /// How long a lock lives without renewal before it counts as stale. Default 2m.
    #[serde(default = "default_lock_ttl")]
    pub lock_ttl: HumanDuration,
}

fn default_ledger_url() -> String {
    "sqlite://.shipgate/ledger.db".to_owned()
}

fn default_lock_timeout() -> HumanDuration {
    HumanDuration::from_secs(600)
}

fn default_lock_ttl() -> HumanDuration {
    HumanDuration::from_secs(120)
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            url: default_ledger_url(),
            lock_timeout: default_lock_timeout(),
            lock_ttl: default_lock_ttl(),
        }
    }
}

/// `[notify]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Slack incoming webhooks.
    #[serde(default)]
    pub slack: Vec<SlackNotifier>,
    /// Generic JSON webhooks, signed with HMAC-SHA256.
    #[serde(default)]
    pub webhooks: Vec<WebhookNotifier>,
    /// Keep one comment with the deploy summary on the pull request that merged the commit
    /// (seed 004's notify step). Needs `pull-requests: write`. Default false.
    #[serde(default)]
    pub github_pr_comment: bool,
    /// Record each deploy as a GitHub deployment with statuses (in_progress, then success,
    /// failure or error). Needs `deployments: write`. Default false.
    #[serde(default)]
    pub github_deployments: bool,
}

/// `[[notify.slack]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackNotifier {
    /// Secret holding the webhook URL. Default `SLACK_WEBHOOK_URL`.
    #[serde(default = "default_slack_secret")]
    pub webhook_secret: String,
    /// Outcomes that notify. Default: all.
    #[serde(default)]
    pub on: Vec<String>,
}

fn default_slack_secret() -> String {
    "SLACK_WEBHOOK_URL".to_owned()
}

/// `[[notify.webhooks]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotifier {
    /// Where to POST.
    pub url: String,
    /// Secret holding the HMAC key. Default `WEBHOOK_SIGNING_SECRET`.
    #[serde(default = "default_webhook_secret")]
    pub signing_secret: String,
    /// Outcomes that notify. Default: all.
    #[serde(default)]
    pub on: Vec<String>,
}

fn default_webhook_secret() -> String {
    "WEBHOOK_SIGNING_SECRET".to_owned()
}

/// `[monitor]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Address of `/metrics` and `/healthz`. Default `127.0.0.1:9464`.
    #[serde(default = "default_monitor_listen")]
    pub listen: String,
    /// How long a replica's claim on a due check lasts; a check may take half of it. A dead
    /// replica's checks are taken over after this. Default 2m.
    #[serde(default = "default_monitor_lease")]
    pub lease: HumanDuration,
    /// Checks run at once by one replica. Default 64.
    #[serde(default = "default_monitor_concurrency")]
    pub concurrency: u32,
    /// What to watch.
    #[serde(default)]
    pub targets: Vec<MonitorTarget>,
    /// How long the checks' latency rollups (the dashboard's health page) are kept.
    /// Default 30d.
    #[serde(default = "default_latency_retention")]
    pub latency_retention: HumanDuration,
}

fn default_latency_retention() -> HumanDuration {
    HumanDuration::from_secs(30 * 86_400)
}

fn default_monitor_lease() -> HumanDuration {
    HumanDuration::from_secs(120)
}

fn default_monitor_concurrency() -> u32 {
    64
}

fn default_monitor_listen() -> String {
    "127.0.0.1:9464".to_owned()
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            listen: default_monitor_listen(),
            lease: default_monitor_lease(),
            concurrency: default_monitor_concurrency(),
            targets: Vec::new(),
            latency_retention: default_latency_retention(),
        }
    }
}

/// `[[monitor.targets]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorTarget {
    /// Unique name.
    pub name: String,
    /// Environment watched. Default: the top-level `environment`.
    pub environment: Option<String>,
    /// An interval (`15m`) or a cron expression (`0 2 * * *`).
    pub schedule: String,
    /// A health URL (expects 2xx).
    pub url: Option<String>,
    /// Run the `[smoke]` checks instead of a single URL. Default false.
    #[serde(default)]
    pub smoke: bool,
    /// Consecutive failures that open an alert. Default 2.
    #[serde(default = "default_open_after")]
    pub open_after: u32,
    /// Consecutive passes that resolve it. Default 2.
    #[serde(default = "default_open_after")]
    pub resolve_after: u32,
    /// Title of the GitHub issue. Default "Production Deployment Health Check Failed".
    #[serde(default = "default_issue_title")]
    pub issue_title: String,
    /// Labels of the GitHub issue. Default `["deployment-alert", "urgent"]`.
    #[serde(default = "default_issue_labels")]
    pub issue_labels: Vec<String>,
    /// At most one comment per this period while an alert stays open. Default 1h.
    #[serde(default = "default_comment_every")]
    pub comment_every: HumanDuration,
}

fn default_open_after() -> u32 {
    2
}

fn default_issue_title() -> String {
    "Production Deployment Health Check Failed".to_owned()
}

fn default_issue_labels() -> Vec<String> {
    vec!["deployment-alert".to_owned(), "urgent".to_owned()]
}

fn default_comment_every() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

/// The name a secret source goes by in reports and `[secrets.keys]`: its `name`, or its kind.
pub fn secret_source_name(source: &SecretSourceConfig) -> &str {
    let (name, kind) = match source {
        SecretSourceConfig::Env { name } => (name, "env"),
        SecretSourceConfig::Dir { name, .. } => (name, "dir"),
        SecretSourceConfig::Dotenv { name, .. } => (name, "dotenv"),
        SecretSourceConfig::Kubernetes { name, .. } => (name, "kubernetes"),
        SecretSourceConfig::Vault { name, .. } => (name, "vault"),
        SecretSourceConfig::AwsSecretsManager { name, .. } => (name, "aws"),
    };
    name.as_deref().unwrap_or(kind)
}

/// `[dashboard]`: the read-only web dashboard (`shipgate dashboard`, and mounted by
/// `shipgate monitor`). It binds the loopback by default; any other address needs an access
/// rule (`token`, `basic_user` + `basic_password`, or `trust_proxy_header`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Address to serve on. Default `127.0.0.1:9465`.
    #[serde(default = "default_dashboard_listen")]
    pub listen: String,
    /// Secret key holding a bearer token every request must send
    /// (`Authorization: Bearer …`).
    pub token: Option<String>,
    /// The user of HTTP basic authentication (with `basic_password`).
    pub basic_user: Option<String>,
    /// Secret key holding the basic-authentication password.
    pub basic_password: Option<String>,
    /// Behind an authenticating proxy: the request header it sets to the signed-in user
    /// (`X-Forwarded-User`). Requests without it are refused.
    pub trust_proxy_header: Option<String>,
    /// How often pages reload themselves. Default 30s; `0s` never.
    #[serde(default = "default_dashboard_refresh")]
    pub refresh: HumanDuration,
}

fn default_dashboard_listen() -> String {
    "127.0.0.1:9465".to_owned()
}

fn default_dashboard_refresh() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            listen: default_dashboard_listen(),
            token: None,
            basic_user: None,
            basic_password: None,
            trust_proxy_header: None,
            refresh: default_dashboard_refresh(),
        }
    }
}
