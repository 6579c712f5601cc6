//! What each page shows, read from the ledger. Each type is also the JSON twin of its page
//! (`/api/…`, `schema_version` 1; docs/dashboard.md documents the fields): the HTML is drawn
//! from exactly these values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shipgate_core::{AlertState, DeploymentKind, Outcome};
use shipgate_ledger::{
    DayCount, Ledger, LedgerError, LiveRelease, LockHolder, RunRecord, StepRecord, TimelineQuery,
    TimelineRun,
};
use shipgate_monitor::report::{self, EnvironmentFigures};

/// The JSON schema version of every `/api/` document.
pub const SCHEMA_VERSION: u32 = 1;

/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;
/// One week, ms.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// How many runs the timeline draws one mark each; a range with more is drawn per day.
pub const TIMELINE_MARKS: i64 = 400;
/// How many of the newest runs the timeline lists.
pub const TIMELINE_LIST: usize = 100;
/// Weeks on the delivery page.
pub const DELIVERY_WEEKS: i64 = 26;

/// The overview: one card per (app, environment).
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When it was read, unix ms.
    pub generated_ms: i64,
    /// The cards, sorted by app, then environment.
    pub environments: Vec<EnvironmentCard>,
}

/// One (app, environment) on the overview.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentCard {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// What each target and service runs now (the newest healthy deployment of each).
    pub live: Vec<LiveRelease>,
    /// The newest run.
    pub last_run: Option<RunRecord>,
    /// Who holds the deploy lock, if anyone.
    pub lock: Option<LockHolder>,
    /// The monitor targets of this environment with an open alert (ids).
    pub open_alerts: Vec<String>,
    /// The delivery figures of the last 30 days.
    pub last_30_days: Figures,
    /// The same figures for the 30 days before, for the trend.
    pub previous_30_days: Figures,
}

/// The four delivery figures (and the mean duration) of a window, as `shipgate report`
/// computes them (docs/report.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Runs that succeeded.
    pub deployments: u64,
    /// Deployments per day.
    pub deployments_per_day: f64,
    /// Mean lead time for changes (commit to live), ms.
    pub lead_time_ms: Option<f64>,
    /// Change failures over runs that changed production.
    pub change_failure_rate: Option<f64>,
    /// Mean time to restore, ms.
    pub time_to_restore_ms: Option<f64>,
    /// Mean run duration, ms.
    pub average_duration_ms: Option<f64>,
    /// Finished runs that tried to deploy.
    pub attempts: u64,
}

impl From<&EnvironmentFigures> for Figures {
    fn from(f: &EnvironmentFigures) -> Figures {
        Figures {
            deployments: f.deployments,
            deployments_per_day: f.deployments_per_day,
            lead_time_ms: f.lead_time_ms,
            change_failure_rate: f.change_failure_rate,
            time_to_restore_ms: f.mean_time_to_restore_ms,
            average_duration_ms: f.average_duration_ms,
            attempts: f.attempts,
        }
    }
}

/// The figures of `app`/`environment` in a report, or zeros.
fn figures_of(report: &report::Report, app: &str, environment: &str) -> Figures {
    report
        .environments
        .iter()
        .find(|e| e.app == app && e.environment == environment)
        .map(Figures::from)
        .unwrap_or_default()
}

/// The figures of one app and environment over `[since_ms, until_ms]`, as `shipgate report`
/// computes them, from the ledger's days.
async fn window(
    ledger: &Ledger,
    app: &str,
    environment: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<Figures, LedgerError> {
    let aggregates = shipgate_ledger::DeliveryAggregates {
        outcomes: ledger
            .delivery_days(app, environment, since_ms, until_ms)
            .await?
            .into_iter()
            .map(|d| d.count)
            .collect(),
    };
    Ok(figures_of(
        &report::compute(&aggregates, since_ms, until_ms),
        app,
        environment,
    ))
}

/// Reads the overview at `now_ms`.
pub async fn overview(ledger: &Ledger, now_ms: i64) -> Result<Overview, LedgerError> {
    let alerting = AlertState::Alerting.as_str();
    let targets = ledger.monitor_all_targets().await?;
    let mut environments = Vec::new();
    for (app, environment) in ledger.environments().await? {
        let open_alerts = targets
            .iter()
            .filter(|t| t.app == app && t.environment == environment && t.state == alerting)
            .map(|t| t.id.clone())
            .collect();
        environments.push(EnvironmentCard {
            live: ledger.live_releases(&app, &environment).await?,
            last_run: ledger.latest_runs(&app, &environment, 1).await?.pop(),
            lock: ledger.lock_status(&app, &environment).await?,
            open_alerts,
            last_30_days: window(ledger, &app, &environment, now_ms - 30 * DAY_MS, now_ms).await?,
            previous_30_days: window(
                ledger,
                &app,
                &environment,
                now_ms - 60 * DAY_MS,
                now_ms - 30 * DAY_MS - 1,
            )
            .await?,
            app,
            environment,
        });
    }
    Ok(Overview {
        schema_version: SCHEMA_VERSION,
        generated_ms: now_ms,
        environments,
    })
}

/// The timeline's filters, as the page's query string carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TimelineFilter {
    /// The app.
    #[serde(default)]
    pub app: String,
    /// The environment.
    #[serde(default)]
    pub environment: String,
    /// Days back from now. Default 30; at most 366.
    pub days: Option<i64>,
    /// Only runs that deployed this service.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub service: Option<String>,
    /// Only runs with this outcome.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub outcome: Option<String>,
}

/// A form's empty field is no filter.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.filter(|v| !v.trim().is_empty()))
}

impl TimelineFilter {
    /// The range in days, bounded.
    pub fn days(&self) -> i64 {
        self.days.unwrap_or(30).clamp(1, 366)
    }
}

/// An environment's runs over a range.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The filters applied.
    pub filter: TimelineFilter,
    /// Range start, unix ms.
    pub since_ms: i64,
    /// Range end, unix ms.
    pub until_ms: i64,
    /// The services this environment deployed (for the filter).
    pub services: Vec<String>,
    /// Runs in the range, counted per day and outcome.
    pub days: Vec<DayCount>,
    /// Runs in the range (all filters applied).
    pub total_runs: i64,
    /// The newest runs, newest first: every run of the range when it has at most
    /// [`TIMELINE_MARKS`], else that many.
    pub runs: Vec<TimelineMark>,
}

/// A run on the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineMark {
    /// The run.
    #[serde(flatten)]
    pub run: TimelineRun,
    /// For a run that only rolled back (`shipgate rollback`): the run before it whose
    /// release it undid.
    pub undid: Option<String>,
}

/// Reads an environment's timeline at `now_ms`.
pub async fn timeline(
    ledger: &Ledger,
    filter: TimelineFilter,
    now_ms: i64,
) -> Result<Timeline, LedgerError> {
    let since_ms = now_ms - filter.days() * DAY_MS;
    let query = TimelineQuery {
        app: filter.app.clone(),
        environment: filter.environment.clone(),
        since_ms,
        until_ms: now_ms,
        service: filter.service.clone(),
        outcome: filter.outcome.clone(),
    };
    let days = ledger.timeline_days(&query).await?;
    let total_runs = days.iter().map(|d| d.runs).sum();
    // One more than drawn: the run before the oldest shown, so a rollback among them can
    // name the run it undid.
    let runs = ledger.timeline(&query, TIMELINE_MARKS + 1).await?;
    let mut services: Vec<String> = ledger
        .live_releases(&filter.app, &filter.environment)
        .await?
        .into_iter()
        .map(|l| l.service)
        .collect();
    services.sort();
    services.dedup();
    let mut marks: Vec<TimelineMark> = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let undid = (run.rollbacks > 0 && run.deploys == 0)
            .then(|| {
                runs[i + 1..]
                    .iter()
                    .find(|earlier| earlier.deploys > 0)
                    .map(|earlier| earlier.run.id.clone())
            })
            .flatten();
        marks.push(TimelineMark {
            run: run.clone(),
            undid,
        });
    }
    marks.truncate(usize::try_from(TIMELINE_MARKS).unwrap_or(400));
    Ok(Timeline {
        schema_version: SCHEMA_VERSION,
        filter,
        since_ms,
        until_ms: now_ms,
        services,
        days,
        total_runs,
        runs: marks,
    })
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct RunPage {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The run as the ledger records it.
    pub run: RunRecord,
    /// Its steps with their times.
    pub steps: Vec<StepRecord>,
    /// Its deployments and rollbacks.
    pub deployments: Vec<shipgate_ledger::DeploymentRecord>,
    /// What its summary says (absent for runs recorded before the ledger kept summaries).
    pub summary: Option<RunSummary>,
    /// Whether the summary JSON can be downloaded.
    pub has_summary: bool,
}

/// The parts of a run's summary the run page shows. Read leniently: a field a summary
/// lacks (an older schema) is empty.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RunSummary {
    /// One sentence: what happened and what is live.
    pub message: String,
    /// `rolling`, `bluegreen`, `canary`.
    pub strategy: Option<String>,
    /// Why the strategy that ran is not the one asked for.
    pub strategy_note: Option<String>,
    /// Each target's deployment.
    pub targets: Vec<TargetView>,
    /// The gate's smoke report.
    pub smoke: Option<SmokeView>,
    /// The staged release's smoke report, before users.
    pub smoke_before_traffic: Option<SmokeView>,
    /// The rollback decision.
    pub rollback: Option<RollbackView>,
    /// The canary's steps.
    pub canary: Vec<CanaryView>,
    /// Where to read more.
    pub links: Vec<LinkView>,
}

/// A target's deployment in a summary.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TargetView {
    /// `local`, `helm`, …
    pub target: String,
    /// `healthy`, `failed`, …
    pub verdict: String,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// Each service: from and to.
    pub services: Vec<ServiceView>,
    /// What the target runs, read back after a failure.
    pub read_back: Option<BTreeMap<String, String>>,
    /// Why it could not be read back.
    pub read_back_error: Option<String>,
}

/// A service's change.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceView {
    /// The service.
    pub service: String,
    /// What ran before.
    pub from: Option<String>,
    /// What was deployed.
    pub to: String,
}

/// A smoke report.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SmokeView {
    /// Whether the gate passed.
    pub passed: bool,
    /// The base URL checked (credentials masked).
    pub base_url: String,
    /// Wall time, ms.
    pub duration_ms: f64,
    /// Each check.
    pub checks: Vec<CheckView>,
}

/// One smoke check.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CheckView {
    /// Its name.
    pub name: String,
    /// `GET`, …
    pub method: String,
    /// The path.
    pub path: String,
    /// `passed`, `failed`, `skipped`, `cancelled`.
    pub outcome: String,
    /// The last status.
    pub status: Option<u16>,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub p95_ms: Option<f64>,
    /// Each sample's latency, ms.
    pub latency_ms: Vec<f64>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// The rollback decision.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RollbackView {
    /// Whether a rollback ran.
    pub performed: bool,
    /// The reason chain, first cause first.
    pub reasons: Vec<String>,
    /// From the failure to the first rollback action, ms.
    pub first_action_ms: Option<f64>,
    /// From the failure to users back on the previous release, ms.
    pub traffic_back_ms: Option<f64>,
    /// Each target's rollback.
    pub targets: Vec<TargetView>,
    /// The smoke report of the restored release.
    pub smoke: Option<SmokeView>,
}

/// A canary step.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CanaryView {
    /// The share asked for, %.
    pub percent: u8,
    /// The share the platform reached, %.
    pub reached: u8,
    /// Whether the step's analysis passed.
    pub passed: bool,
    /// What the analysis saw.
    pub notes: Vec<String>,
}

/// A link.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LinkView {
    /// What it points to.
    pub label: String,
    /// The URL.
    pub url: String,
}

/// Reads run `id`; `None` when the ledger has no such run.
pub async fn run_page(ledger: &Ledger, id: &str) -> Result<Option<RunPage>, LedgerError> {
    let Some((run, steps, deployments)) = ledger.run(id).await? else {
        return Ok(None);
    };
    let stored = ledger.run_summary(id).await?;
    let summary = stored
        .as_deref()
        .and_then(|json| serde_json::from_str::<RunSummary>(json).ok());
    Ok(Some(RunPage {
        schema_version: SCHEMA_VERSION,
        run,
        steps,
        deployments,
        has_summary: stored.is_some(),
        summary,
    }))
}

/// The delivery page: weekly figures of one environment.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Every (app, environment) the ledger knows.
    pub environments: Vec<(String, String)>,
    /// The one shown.
    pub app: String,
    /// The one shown.
    pub environment: String,
    /// Oldest week first.
    pub weeks: Vec<Week>,
}

/// One week's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Week {
    /// Its first moment, unix ms (a Monday 00:00 UTC).
    pub since_ms: i64,
    /// Its last, unix ms.
    pub until_ms: i64,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The selection of the delivery page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeliveryFilter {
    /// The app (default: the first environment's).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub app: Option<String>,
    /// The environment.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub environment: Option<String>,
}

/// Monday 00:00 UTC of the week of `ms`.
fn week_start(ms: i64) -> i64 {
    // 1970-01-01 was a Thursday: Mondays are 4 days later, modulo a week.
    let offset = 4 * DAY_MS;
    ms - (ms - offset).rem_euclid(WEEK_MS)
}

/// Reads the delivery page at `now_ms`: [`DELIVERY_WEEKS`] weeks, the current one last.
pub async fn delivery(
    ledger: &Ledger,
    filter: DeliveryFilter,
    now_ms: i64,
) -> Result<Delivery, LedgerError> {
    let environments = ledger.environments().await?;
    let (app, environment) = match (filter.app, filter.environment) {
        (Some(app), Some(environment)) => (app, environment),
        (app, _) => environments
            .iter()
            .find(|(a, _)| app.as_ref().is_none_or(|want| want == a))
            .cloned()
            .unwrap_or_default(),
    };
    let current = week_start(now_ms);
    let first = current - (DELIVERY_WEEKS - 1) * WEEK_MS;
    // One read for all the weeks: the rollup's days, grouped here into weeks and computed
    // by the report's own arithmetic.
    let mut per_week: BTreeMap<i64, Vec<shipgate_ledger::OutcomeCount>> = BTreeMap::new();
    for day in ledger
        .delivery_days(&app, &environment, first, now_ms)
        .await?
    {
        per_week
            .entry(week_start(day.day_ms))
            .or_default()
            .push(day.count);
    }
    let mut weeks = Vec::new();
    for back in (0..DELIVERY_WEEKS).rev() {
        let since_ms = current - back * WEEK_MS;
        let until_ms = (since_ms + WEEK_MS - 1).min(now_ms);
        let aggregates = shipgate_ledger::DeliveryAggregates {
            outcomes: per_week.remove(&since_ms).unwrap_or_default(),
        };
        let report = report::compute(&aggregates, since_ms, until_ms);
        weeks.push(Week {
            since_ms,
            until_ms,
            figures: figures_of(&report, &app, &environment),
        });
    }
    Ok(Delivery {
        schema_version: SCHEMA_VERSION,
        environments,
        app,
        environment,
        weeks,
    })
}

/// The health page: every monitor target.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When it was read, unix ms.
    pub generated_ms: i64,
    /// Each watched target, by id.
    pub targets: Vec<TargetHealth>,
}

/// One monitor target's health.
#[derive(Debug, Clone, Serialize)]
pub struct TargetHealth {
    /// `app/environment/name`.
    pub id: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The target's name.
    pub name: String,
    /// `healthy`, `failing`, `alerting`, `recovering`.
    pub state: String,
    /// The last check, unix ms.
    pub last_checked_ms: Option<i64>,
    /// What it found.
    pub last_detail: Option<String>,
    /// The first failure of the current streak.
    pub failing_since_ms: Option<i64>,
    /// The open alert's issue.
    pub issue_url: Option<String>,
    /// The last 24 hours.
    pub day: Latency,
    /// The last 7 days.
    pub week: Latency,
}

/// Check latencies over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Checks.
    pub checks: i64,
    /// Failed checks.
    pub failures: i64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
}

impl From<&shipgate_ledger::LatencyStats> for Latency {
    fn from(s: &shipgate_ledger::LatencyStats) -> Latency {
        Latency {
            checks: s.checks,
            failures: s.failures,
            p50_ms: s.quantile(0.5),
            p95_ms: s.quantile(0.95),
        }
    }
}

/// Reads the health page at `now_ms`.
pub async fn health(ledger: &Ledger, now_ms: i64) -> Result<Health, LedgerError> {
    // The last 24 hours to the 5 minutes; the last 7 days to the hour.
    let day: BTreeMap<String, Latency> = ledger
        .monitor_latency(now_ms - DAY_MS)
        .await?
        .iter()
        .map(|s| (s.target_id.clone(), Latency::from(s)))
        .collect();
    let week: BTreeMap<String, Latency> = ledger
        .monitor_latency_hourly(now_ms - WEEK_MS)
        .await?
        .iter()
        .map(|s| (s.target_id.clone(), Latency::from(s)))
        .collect();
    let targets = ledger
        .monitor_all_targets()
        .await?
        .into_iter()
        .map(|t| TargetHealth {
            day: day.get(&t.id).cloned().unwrap_or_default(),
            week: week.get(&t.id).cloned().unwrap_or_default(),
            id: t.id,
            app: t.app,
            environment: t.environment,
            name: t.name,
            state: t.state,
            last_checked_ms: t.last_checked_ms,
            last_detail: t.last_detail,
            failing_since_ms: t.failing_since_ms,
            issue_url: t.issue_url,
        })
        .collect();
    Ok(Health {
        schema_version: SCHEMA_VERSION,
        generated_ms: now_ms,
        targets,
    })
}

/// Whether a run's deployments include a rollback.
pub fn is_rollback_kind(kind: &str) -> bool {
    kind == DeploymentKind::Rollback.as_str()
}

/// The words of every outcome, for the timeline's filter.
pub fn outcome_words() -> Vec<&'static str> {
    Outcome::ALL.iter().map(|o| o.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_midnight_utc() {
        // 2026-12-07 is a Monday.
        let monday = 1_796_601_600_000; // 2026-12-07T00:00:00Z
        assert_eq!(week_start(monday), monday);
        assert_eq!(week_start(monday + 3 * DAY_MS + 5), monday);
        assert_eq!(week_start(monday - 1), monday - WEEK_MS);
    }
}
