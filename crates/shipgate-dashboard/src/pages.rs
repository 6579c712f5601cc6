//! The pages, as maud templates: compile-time checked, and every value escaped. Text from
//! the ledger also goes through [`clean`] (credentials masked, control and direction
//! characters shown as escapes) before it reaches the page.

use maud::{DOCTYPE, Markup, html};
use shipgate_core::{one_line, redact_credentials};

use crate::model::{
    Delivery, EnvironmentCard, Figures, Health, Overview, RunPage, SmokeView, TargetView, Timeline,
    TimelineFilter, outcome_words,
};
use crate::svg;

/// Ledger text made safe to show: credentials masked, control characters and bidi
/// overrides turned into visible escapes (HTML escaping is maud's).
pub(crate) fn clean(text: &str) -> String {
    one_line(&redact_credentials(text)).into_owned()
}

/// A path segment: every byte but unreserved ones percent-encoded.
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// A UTC time, `2026-12-07 10:15 UTC`.
pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "?".to_owned(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A duration in words (`1m 4s`, `820 ms`), or `n/a`.
pub(crate) fn duration_ms(ms: Option<f64>) -> String {
    match ms {
        None => "n/a".to_owned(),
        Some(ms) if ms < 1_000.0 => format!("{ms:.0} ms"),
        Some(ms) => {
            let secs = (ms / 1_000.0).round() as u64;
            let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
            match (d, h, m) {
                (0, 0, 0) => format!("{s}s"),
                (0, 0, _) => format!("{m}m {s}s"),
                (0, _, _) => format!("{h}h {m}m"),
                _ => format!("{d}d {h}h"),
            }
        }
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

fn per_day(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}/day"))
}

fn count(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0}"))
}

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Delivery,
    Health,
    Other,
}

/// The frame of every page.
pub(crate) fn layout(title: &str, nav: Nav, refresh_secs: u64, api: &str, body: Markup) -> Markup {
    let item = |target: Nav, href: &'static str, label: &'static str| {
        html! {
            @if nav == target { a.current href=(href) aria-current="page" { (label) } }
            @else { a href=(href) { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh_secs > 0 { meta http-equiv="refresh" content=(refresh_secs); }
                title { (title) " · shipgate" }
                link rel="stylesheet" href="/assets/dashboard.css";
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "shipgate" }
                        (item(Nav::Overview, "/", "Overview"))
                        (item(Nav::Delivery, "/delivery", "Delivery"))
                        (item(Nav::Health, "/health", "Health"))
                    }
                }
                main { (body) }
                footer {
                    "A read-only view of the shipgate ledger. This page as JSON: "
                    a href=(api) { (api) }
                }
            }
        }
    }
}

fn badge(outcome: Option<&str>) -> Markup {
    html! {
        span.badge.(svg::outcome_class(outcome)) { (clean(outcome.unwrap_or("running"))) }
    }
}

fn run_link(id: &str) -> Markup {
    html! { a.run href=(format!("/runs/{}", path_segment(id))) { (clean(id)) } }
}

fn timeline_href(app: &str, environment: &str) -> String {
    format!(
        "/timeline?{}",
        query(&[("app", app), ("environment", environment)])
    )
}

/// A figure with its trend against the window before: `▲ 20 %`, green when it got better.
fn trend(now: Option<f64>, before: Option<f64>, higher_is_better: bool) -> Markup {
    match (now, before) {
        (Some(now), Some(before)) if before > 0.0 => {
            let change = (now - before) / before;
            if change.abs() < 0.005 {
                return html! { span.trend.flat { "= same as the 30 days before" } };
            }
            let better = (change > 0.0) == higher_is_better;
            let arrow = if change > 0.0 { "▲" } else { "▼" };
            html! {
                span.trend.(if better { "better" } else { "worse" }) {
                    (arrow) " " (format!("{:.0} %", change.abs() * 100.0)) " vs the 30 days before"
                }
            }
        }
        _ => html! { span.trend.flat { "no figure for the 30 days before" } },
    }
}

fn figures(now: &Figures, before: &Figures) -> Markup {
    html! {
        dl.figures {
            div {
                dt { "Deployment frequency" }
                dd { (per_day(Some(now.deployments_per_day))) " " (trend(Some(now.deployments_per_day), Some(before.deployments_per_day), true)) }
            }
            div {
                dt { "Lead time for changes" }
                dd { (duration_ms(now.lead_time_ms)) " " (trend(now.lead_time_ms, before.lead_time_ms, false)) }
            }
            div {
                dt { "Change failure rate" }
                dd { (percent(now.change_failure_rate)) " " (trend(now.change_failure_rate, before.change_failure_rate, false)) }
            }
            div {
                dt { "Time to restore" }
                dd { (duration_ms(now.time_to_restore_ms)) " " (trend(now.time_to_restore_ms, before.time_to_restore_ms, false)) }
            }
        }
    }
}

fn card(card: &EnvironmentCard) -> Markup {
    html! {
        section.card data-environment=(format!("{}/{}", clean(&card.app), clean(&card.environment))) {
            h2 { a href=(timeline_href(&card.app, &card.environment)) { (clean(&card.app)) " / " (clean(&card.environment)) } }
            @if let Some(run) = &card.last_run {
                p.last {
                    "Last run " (badge(run.outcome.as_deref())) " " (run_link(&run.id))
                    " · " code { (clean(&run.image_tag)) } " · " (time(run.started_ms))
                }
            }
            @if let Some(lock) = &card.lock {
                p.lock {
                    "Deploy lock held by " (run_link(&lock.run_id)) " (" (clean(&lock.owner)) ", " (clean(&lock.reason)) ") since " (time(lock.acquired_ms))
                }
            }
            @if !card.open_alerts.is_empty() {
                p.alerts {
                    "Open alerts: "
                    @for (i, id) in card.open_alerts.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href="/health" { (clean(id)) }
                    }
                }
            }
            @if card.live.is_empty() {
                p.muted { "Nothing verified live yet." }
            } @else {
                div.scroll {
                    table.live {
                        thead { tr { th { "Target" } th { "Service" } th { "Image" } th { "Since" } th { "Run" } } }
                        tbody {
                            @for live in &card.live {
                                tr {
                                    td { (clean(&live.target)) }
                                    td { (clean(&live.service)) }
                                    td { code { (clean(&live.image)) } @if crate::model::is_rollback_kind(&live.kind) { " " span.tag { "rolled back to" } } }
                                    td { (time(live.since_ms)) }
                                    td { (run_link(&live.run_id)) }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Last 30 days" }
            (figures(&card.last_30_days, &card.previous_30_days))
        }
    }
}

/// `/`.
pub(crate) fn overview(page: &Overview, refresh: u64) -> Markup {
    let body = html! {
        h1 { "Environments" }
        @if page.environments.is_empty() {
            p.muted { "The ledger has no run yet. Run " code { "shipgate deploy" } " and come back." }
        }
        div.cards {
            @for env in &page.environments { (card(env)) }
        }
        p.muted { "Read " (time(page.generated_ms)) "." }
    };
    layout("Overview", Nav::Overview, refresh, "/api/overview", body)
}

/// `/timeline`.
pub(crate) fn timeline(page: &Timeline, refresh: u64) -> Markup {
    let filter = &page.filter;
    let api = format!("/api/timeline?{}", filter_query(filter));
    let body = html! {
        h1 { "Timeline of " (clean(&filter.app)) " / " (clean(&filter.environment)) }
        form.filters method="get" action="/timeline" {
            input type="hidden" name="app" value=(filter.app);
            input type="hidden" name="environment" value=(filter.environment);
            label { "Range " select name="days" {
                @for days in [1, 7, 30, 90, 180, 365] {
                    option value=(days) selected[filter.days() == days] { (days) " days" }
                }
            } }
            label { "Service " select name="service" {
                option value="" { "all" }
                @for service in &page.services {
                    option value=(service) selected[filter.service.as_deref() == Some(service.as_str())] { (clean(service)) }
                }
            } }
            label { "Outcome " select name="outcome" {
                option value="" { "all" }
                @for word in outcome_words() {
                    option value=(word) selected[filter.outcome.as_deref() == Some(word)] { (word) }
                }
            } }
            button type="submit" { "Show" }
        }
        p { (page.total_runs) " run(s) in the last " (filter.days()) " days." }
        @if i64::try_from(page.runs.len()).unwrap_or(i64::MAX) >= page.total_runs {
            (svg::timeline_marks(&page.runs, page.since_ms, page.until_ms))
        } @else {
            (svg::timeline_days(&page.days, page.since_ms, page.until_ms))
            p.muted { "Too many runs for a mark each: runs per day. The newest are listed below." }
        }
        (legend())
        h2 { "Newest runs" }
        div.scroll {
            table.runs {
                thead { tr { th { "Run" } th { "Started" } th { "Outcome" } th { "Image tag" } th { "Took" } th { "Strategy" } th { "Rollback" } } }
                tbody {
                    @for mark in page.runs.iter().take(crate::model::TIMELINE_LIST) {
                        @let run = &mark.run.run;
                        tr {
                            td { (run_link(&run.id)) }
                            td { (time(run.started_ms)) }
                            td { (badge(run.outcome.as_deref())) }
                            td { code { (clean(&run.image_tag)) } }
                            td { (duration_ms(run.finished_ms.map(|f| (f - run.started_ms) as f64))) }
                            td { (clean(run.strategy.as_deref().unwrap_or(""))) }
                            td {
                                @if let Some(undid) = &mark.undid { "undid " (run_link(undid)) }
                                @else if mark.run.rollbacks > 0 { "rolled itself back" }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Timeline", Nav::Other, refresh, &api, body)
}

fn filter_query(filter: &TimelineFilter) -> String {
    let days = filter.days().to_string();
    let mut pairs = vec![
        ("app", filter.app.as_str()),
        ("environment", filter.environment.as_str()),
        ("days", days.as_str()),
    ];
    if let Some(service) = &filter.service {
        pairs.push(("service", service));
    }
    if let Some(outcome) = &filter.outcome {
        pairs.push(("outcome", outcome));
    }
    query(&pairs)
}

fn legend() -> Markup {
    html! {
        ul.legend {
            @for word in outcome_words() {
                li { span.swatch.(svg::outcome_class(Some(word))) {} (word) }
            }
        }
    }
}

fn smoke(title: &str, report: &SmokeView) -> Markup {
    let slowest = report
        .checks
        .iter()
        .filter_map(|c| c.p95_ms.or(c.p50_ms))
        .fold(1.0_f64, f64::max);
    html! {
        section.smoke {
            h3 { (title) " " @if report.passed { span.badge.o-succeeded { "passed" } } @else { span.badge.o-failed { "failed" } } }
            p.muted { "Against " code { (clean(&report.base_url)) } " in " (duration_ms(Some(report.duration_ms))) }
            div.scroll {
                table.checks {
                    thead { tr { th { "Check" } th { "Request" } th { "Outcome" } th { "Status" } th { "p50" } th { "p95" } th { "Latency" } } }
                    tbody {
                        @for check in &report.checks {
                            tr {
                                td { (clean(&check.name)) }
                                td { code { (clean(&check.method)) " " (clean(&check.path)) } }
                                td { span.badge.(if check.outcome == "passed" { "o-succeeded" } else { "o-failed" }) { (clean(&check.outcome)) }
                                     @if let Some(failure) = &check.failure { div.detail { (clean(failure)) } } }
                                td { (check.status.map_or_else(String::new, |s| s.to_string())) }
                                td { (duration_ms(check.p50_ms)) }
                                td { (duration_ms(check.p95_ms)) }
                                td { (svg::meter(check.p95_ms.or(check.p50_ms), slowest, &format!("{}: {}", clean(&check.name), duration_ms(check.p95_ms.or(check.p50_ms))))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn targets_table(targets: &[TargetView]) -> Markup {
    html! {
        div.scroll {
            table.targets {
                thead { tr { th { "Target" } th { "Service" } th { "From" } th { "To" } th { "Verdict" } th { "Read back" } } }
                tbody {
                    @for target in targets {
                        @for service in &target.services {
                            tr {
                                td { (clean(&target.target)) }
                                td { (clean(&service.service)) }
                                td { code { (clean(service.from.as_deref().unwrap_or("—"))) } }
                                td { code { (clean(&service.to)) } }
                                td { (clean(&target.verdict)) @if let Some(reason) = &target.reason { div.detail { (clean(reason)) } } }
                                td {
                                    @if let Some(read) = &target.read_back {
                                        @for (svc, image) in read { div { (clean(svc)) ": " code { (clean(image)) } } }
                                    } @else if let Some(err) = &target.read_back_error {
                                        span.detail { (clean(err)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/runs/{id}`.
pub(crate) fn run(page: &RunPage, refresh: u64) -> Markup {
    let run = &page.run;
    let id = path_segment(&run.id);
    let body = html! {
        h1 { "Run " (clean(&run.id)) " " (badge(run.outcome.as_deref())) }
        p {
            a href=(timeline_href(&run.app, &run.environment)) { (clean(&run.app)) " / " (clean(&run.environment)) }
            " · image tag " code { (clean(&run.image_tag)) }
            " · by " (clean(&run.owner)) " on " (clean(&run.host))
            " · started " (time(run.started_ms))
            @if let Some(finished) = run.finished_ms { " · took " (duration_ms(Some((finished - run.started_ms) as f64))) }
            @if let Some(strategy) = &run.strategy { " · " (clean(strategy)) }
        }
        @if let Some(summary) = &page.summary {
            p.message { (clean(&summary.message)) }
            @if let Some(note) = &summary.strategy_note { p.muted { (clean(note)) } }
            @if !summary.links.is_empty() {
                ul.links {
                    @for link in &summary.links {
                        @if link.url.starts_with("https://") || link.url.starts_with("http://") {
                            li { a href=(clean(&link.url)) rel="noreferrer" { (clean(&link.label)) } }
                        }
                    }
                }
            }
        }
        @if page.has_summary {
            p { a.download href=(format!("/runs/{id}/summary.json")) download=(format!("{}.json", clean(&run.id))) { "Download the summary JSON" } }
        }
        h2 { "Steps" }
        @if page.steps.is_empty() { p.muted { "No step recorded." } }
        @else {
            (svg::step_bars(&page.steps, run.started_ms))
            div.scroll {
                table.steps {
                    thead { tr { th { "Step" } th { "Outcome" } th { "Took" } th { "Detail" } } }
                    tbody {
                        @for step in &page.steps {
                            tr {
                                td { (clean(&step.name)) }
                                td { (clean(&step.outcome)) }
                                td { (duration_ms(Some((step.finished_ms - step.started_ms) as f64))) }
                                td.detail { (clean(&step.detail)) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Targets" }
        @match &page.summary {
            Some(summary) if !summary.targets.is_empty() => (targets_table(&summary.targets)),
            _ => {
                div.scroll {
                    table.targets {
                        thead { tr { th { "Target" } th { "Service" } th { "Kind" } th { "From" } th { "To" } th { "Verdict" } } }
                        tbody {
                            @for d in &page.deployments {
                                tr { td { (clean(&d.target)) } td { (clean(&d.service)) } td { (clean(&d.kind)) }
                                     td { code { (clean(d.from_image.as_deref().unwrap_or("—"))) } } td { code { (clean(&d.to_image)) } } td { (clean(&d.verdict)) } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(summary) = &page.summary {
            @if let Some(report) = &summary.smoke_before_traffic { (smoke("Smoke test before traffic", report)) }
            @if let Some(report) = &summary.smoke { (smoke("Smoke gate", report)) }
            @if !summary.canary.is_empty() {
                h2 { "Canary steps" }
                table.canary {
                    thead { tr { th { "Asked" } th { "Reached" } th { "Analysis" } th { "Notes" } } }
                    tbody {
                        @for step in &summary.canary {
                            tr { td { (step.percent) " %" } td { (step.reached) " %" }
                                 td { @if step.passed { "passed" } @else { "failed" } }
                                 td { @for note in &step.notes { div { (clean(note)) } } } }
                        }
                    }
                }
            }
            @if let Some(rollback) = &summary.rollback {
                section.rollback {
                    h2 { "Rollback" }
                    p { @if rollback.performed { "Rolled back." } @else { "No rollback ran." }
                        @if let Some(ms) = rollback.first_action_ms { " First action " (duration_ms(Some(ms))) " after the failure." }
                        @if let Some(ms) = rollback.traffic_back_ms { " Users back on the previous release after " (duration_ms(Some(ms))) "." } }
                    @if !rollback.reasons.is_empty() {
                        h3 { "Why" }
                        ol.reasons { @for reason in &rollback.reasons { li { (clean(reason)) } } }
                    }
                    @if !rollback.targets.is_empty() { (targets_table(&rollback.targets)) }
                    @if let Some(report) = &rollback.smoke { (smoke("Smoke test of the restored release", report)) }
                }
            }
        }
    };
    layout(
        &format!("Run {}", clean(&run.id)),
        Nav::Other,
        refresh,
        &format!("/api/runs/{id}"),
        body,
    )
}

/// `/delivery`.
pub(crate) fn delivery(page: &Delivery, refresh: u64) -> Markup {
    let points = |f: fn(&Figures) -> Option<f64>| -> Vec<(i64, Option<f64>)> {
        page.weeks
            .iter()
            .map(|w| (w.since_ms, f(&w.figures)))
            .collect()
    };
    let api = format!(
        "/api/delivery?{}",
        query(&[("app", &page.app), ("environment", &page.environment)])
    );
    let body = html! {
        h1 { "Delivery of " (clean(&page.app)) " / " (clean(&page.environment)) }
        @if page.environments.len() > 1 {
            nav.environments {
                @for (app, environment) in &page.environments {
                    @let href = format!("/delivery?{}", query(&[("app", app), ("environment", environment)]));
                    @if *app == page.app && *environment == page.environment { a.current href=(href) { (clean(app)) " / " (clean(environment)) } }
                    @else { a href=(href) { (clean(app)) " / " (clean(environment)) } }
                }
            }
        }
        p.muted { "Per week (Monday to Sunday, UTC) over the last " (page.weeks.len()) " weeks; the definitions are those of " code { "shipgate report" } " (docs/report.md)." }
        div.charts {
            (svg::series("Deployments per week", &points(|f| Some(f.deployments as f64)), true, count))
            (svg::series("Lead time for changes", &points(|f| f.lead_time_ms), false, duration_ms))
            (svg::series("Change failure rate", &points(|f| f.change_failure_rate), false, percent))
            (svg::series("Time to restore", &points(|f| f.time_to_restore_ms), false, duration_ms))
            (svg::series("Average run duration", &points(|f| f.average_duration_ms), false, duration_ms))
        }
        h2 { "Figures" }
        div.scroll {
            table.weeks {
                thead { tr { th { "Week of" } th { "Runs" } th { "Deployments" } th { "Frequency" } th { "Lead time" } th { "Change failure rate" } th { "Time to restore" } th { "Average duration" } } }
                tbody {
                    @for week in page.weeks.iter().rev() {
                        tr {
                            td { (time(week.since_ms).get(..10).unwrap_or("")) }
                            td { (week.figures.attempts) }
                            td { (week.figures.deployments) }
                            td { (per_day(Some(week.figures.deployments_per_day))) }
                            td { (duration_ms(week.figures.lead_time_ms)) }
                            td { (percent(week.figures.change_failure_rate)) }
                            td { (duration_ms(week.figures.time_to_restore_ms)) }
                            td { (duration_ms(week.figures.average_duration_ms)) }
                        }
                    }
                }
            }
        }
    };
    layout("Delivery", Nav::Delivery, refresh, &api, body)
}

/// `/health`.
pub(crate) fn health(page: &Health, refresh: u64) -> Markup {
    let slowest = page
        .targets
        .iter()
        .filter_map(|t| t.week.p95_ms)
        .fold(1.0_f64, f64::max);
    let body = html! {
        h1 { "Health" }
        @if page.targets.is_empty() {
            p.muted { "No monitor target yet: add " code { "[[monitor.targets]]" } " and run " code { "shipgate monitor" } "." }
        } @else {
            div.scroll {
                table.health {
                    thead { tr { th { "Target" } th { "State" } th { "Last check" } th { "24 h p50 / p95" } th { "7 d p50 / p95" } th { "7 d checks" } th { "p95, 7 d" } } }
                    tbody {
                        @for t in &page.targets {
                            tr data-target=(clean(&t.id)) {
                                td { (clean(&t.id)) }
                                td {
                                    span.badge.(state_class(&t.state)) { (clean(&t.state)) }
                                    @if let Some(since) = t.failing_since_ms { div.detail { "failing since " (time(since)) } }
                                    @if let Some(url) = &t.issue_url { @if url.starts_with("https://") { div { a href=(clean(url)) rel="noreferrer" { "alert issue" } } } }
                                }
                                td { (t.last_checked_ms.map_or_else(|| "never".to_owned(), time))
                                     @if let Some(detail) = &t.last_detail { div.detail { (clean(detail)) } } }
                                td { (duration_ms(t.day.p50_ms)) " / " (duration_ms(t.day.p95_ms)) }
                                td { (duration_ms(t.week.p50_ms)) " / " (duration_ms(t.week.p95_ms)) }
                                td { (t.week.checks) " (" (t.week.failures) " failed)" }
                                td { (svg::meter(t.week.p95_ms, slowest, &format!("p95 {}", duration_ms(t.week.p95_ms)))) }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Latencies from the monitor's 5-minute rollups. Read " (time(page.generated_ms)) "." }
    };
    layout("Health", Nav::Health, refresh, "/api/health", body)
}

fn state_class(state: &str) -> &'static str {
    match state.parse::<shipgate_core::AlertState>() {
        Ok(shipgate_core::AlertState::Healthy) => "o-succeeded",
        Ok(shipgate_core::AlertState::Recovering) => "o-superseded",
        Ok(shipgate_core::AlertState::Failing) => "o-rolled_back",
        Ok(shipgate_core::AlertState::Alerting) => "o-failed",
        _ => "o-unknown",
    }
}

/// An error page: what went wrong, said once.
pub(crate) fn problem(title: &str, detail: &str) -> Markup {
    layout(
        title,
        Nav::Other,
        0,
        "/api/overview",
        html! { h1 { (title) } p { (clean(detail)) } p { a href="/" { "Back to the overview" } } },
    )
}
