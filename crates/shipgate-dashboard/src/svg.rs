//! Charts drawn as inline SVG on the server: no script, no asset from elsewhere. Colours come
//! from the stylesheet through classes (`o-succeeded`, …), so the page's CSP needs no inline
//! style. Every mark has a `<title>` (a tooltip, and text for screen readers).

use maud::{Markup, html};
use shipgate_core::Outcome;
use shipgate_ledger::{DayCount, StepRecord};

use crate::model::{DAY_MS, TimelineMark};
use crate::pages::{clean, duration_ms, time};

/// The drawing's width in user units; the SVG scales to its container.
const WIDTH: f64 = 1000.0;

/// The CSS class of an outcome word: the vocabulary's word, or `unknown` for one this
/// version does not know (a ledger value never becomes markup of its own).
pub(crate) fn outcome_class(outcome: Option<&str>) -> &'static str {
    match outcome.map(Outcome::parse) {
        None => "o-running",
        Some(Some(outcome)) => match outcome {
            Outcome::Succeeded => "o-succeeded",
            Outcome::Failed => "o-failed",
            Outcome::RolledBack => "o-rolled_back",
            Outcome::RollbackFailed => "o-rollback_failed",
            Outcome::Unhealthy => "o-unhealthy",
            Outcome::Aborted => "o-aborted",
            Outcome::LockTimeout => "o-lock_timeout",
            Outcome::Superseded => "o-superseded",
            _ => "o-unknown",
        },
        Some(None) => "o-unknown",
    }
}

/// x of `ms` on a `[since, until]` axis.
fn x_of(ms: i64, since: i64, until: i64) -> f64 {
    let span = (until - since).max(1) as f64;
    ((ms - since) as f64 / span * WIDTH).clamp(0.0, WIDTH)
}

/// Day ticks under a time axis: at most 10 labels.
fn time_axis(since: i64, until: i64, y: f64) -> Markup {
    let days = ((until - since) / DAY_MS).max(1);
    let step = (days / 10).max(1) * DAY_MS;
    let first = since - since.rem_euclid(DAY_MS) + DAY_MS;
    let ticks: Vec<i64> = (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= until)
        .collect();
    html! {
        line.axis x1="0" y1=(y) x2=(WIDTH) y2=(y) {}
        @for tick in ticks {
            @let x = x_of(tick, since, until);
            line.tick x1=(fmt(x)) y1=(y) x2=(fmt(x)) y2=(y + 5.0) {}
            text.label x=(fmt(x)) y=(y + 18.0) text-anchor="middle" { (day_label(tick)) }
        }
    }
}

fn day_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(String::new, |d| d.format("%b %-d").to_string())
}

/// A coordinate with one decimal.
fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// Every run as a mark on the time axis, coloured by outcome, linked to its page; a run that
/// rolled back is drawn as a ring on the rollback row, with a line to the run it undid.
pub(crate) fn timeline_marks(marks: &[TimelineMark], since: i64, until: i64) -> Markup {
    let lane = |m: &TimelineMark| {
        if m.run.rollbacks > 0 { 60.0 } else { 30.0 }
    };
    let position = |id: &str| {
        marks
            .iter()
            .find(|m| m.run.run.id == id)
            .map(|m| (x_of(m.run.run.started_ms, since, until), lane(m)))
    };
    html! {
        svg.chart.timeline viewBox=(format!("0 0 {WIDTH} 110")) role="img" aria-label="Runs on a time axis, coloured by outcome" {
            text.label x="0" y="12" { "deploys" }
            text.label x="0" y="52" { "rollbacks" }
            @for mark in marks {
                @if let (Some(undid), Some((x, y))) = (&mark.undid, position(&mark.run.run.id)) {
                    @if let Some((ux, uy)) = position(undid) {
                        line.undid x1=(fmt(x)) y1=(fmt(y)) x2=(fmt(ux)) y2=(fmt(uy)) {}
                    }
                }
            }
            @for mark in marks {
                @let run = &mark.run.run;
                @let x = x_of(run.started_ms, since, until);
                @let y = lane(mark);
                a href=(format!("/runs/{}", crate::pages::path_segment(&run.id))) {
                    @if mark.run.rollbacks > 0 {
                        circle.ring.(outcome_class(run.outcome.as_deref())) cx=(fmt(x)) cy=(fmt(y)) r="6" data-run=(clean(&run.id)) {
                            title { (mark_title(mark)) }
                        }
                    } @else {
                        circle.mark.(outcome_class(run.outcome.as_deref())) cx=(fmt(x)) cy=(fmt(y)) r="6" data-run=(clean(&run.id)) {
                            title { (mark_title(mark)) }
                        }
                    }
                }
            }
            (time_axis(since, until, 80.0))
        }
    }
}

fn mark_title(mark: &TimelineMark) -> String {
    let run = &mark.run.run;
    let mut title = format!(
        "{} · {} · {} · {}",
        clean(&run.id),
        clean(&run.image_tag),
        clean(run.outcome.as_deref().unwrap_or("running")),
        time(run.started_ms)
    );
    if let Some(undid) = &mark.undid {
        title.push_str(&format!(" · undid {}", clean(undid)));
    }
    title
}

/// Runs per day as stacked bars, one colour per outcome: a range with too many runs for a
/// mark each.
pub(crate) fn timeline_days(days: &[DayCount], since: i64, until: i64) -> Markup {
    let mut per_day: std::collections::BTreeMap<i64, Vec<&DayCount>> = Default::default();
    for d in days {
        per_day.entry(d.day_ms).or_default().push(d);
    }
    let most = per_day
        .values()
        .map(|v| v.iter().map(|d| d.runs).sum::<i64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let width = (x_of(since + DAY_MS, since, until) - 1.0).max(1.0);
    // Each day's outcomes stacked from the axis up.
    let mut rects = Vec::new();
    for (day, counts) in &per_day {
        let mut top = 100.0;
        for count in counts {
            let h = count.runs as f64 / most * 80.0;
            top -= h;
            rects.push((x_of(*day, since, until), top, h, *count, *day));
        }
    }
    html! {
        svg.chart.timeline viewBox=(format!("0 0 {WIDTH} 130")) role="img" aria-label="Runs per day, coloured by outcome" {
            text.label x="0" y="12" { (format!("up to {most} runs a day")) }
            @for (x, y, h, count, day) in rects {
                rect.bar.(outcome_class(Some(&count.outcome))) x=(fmt(x)) y=(fmt(y)) width=(fmt(width)) height=(fmt(h)) {
                    title { (format!("{} · {} {}", day_label(day), count.runs, clean(&count.outcome))) }
                }
            }
            (time_axis(since, until, 100.0))
        }
    }
}

/// A bar per step, placed on the run's own time axis.
pub(crate) fn step_bars(steps: &[StepRecord], run_start: i64) -> Markup {
    let end = steps
        .iter()
        .map(|s| s.finished_ms)
        .max()
        .unwrap_or(run_start)
        .max(run_start + 1);
    let row = 26.0;
    let height = row * steps.len() as f64 + 10.0;
    html! {
        svg.chart.steps viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-label="Steps on the run's time axis" {
            @for (i, step) in steps.iter().enumerate() {
                @let y = i as f64 * row + 4.0;
                @let x = 250.0 + x_of(step.started_ms, run_start, end) * 0.55;
                @let w = ((x_of(step.finished_ms, run_start, end) - x_of(step.started_ms, run_start, end)) * 0.55).max(2.0);
                text.label x="0" y=(fmt(y + 15.0)) { (clean(&step.name)) }
                rect.bar.(if step.outcome == shipgate_core::StepResult::Ok.as_str() { "s-ok" } else { "s-failed" }) x=(fmt(x)) y=(fmt(y)) width=(fmt(w)) height="18" {
                    title { (format!("{}: {} in {}", clean(&step.name), clean(&step.outcome), duration_ms(Some((step.finished_ms - step.started_ms) as f64)))) }
                }
            }
        }
    }
}

/// A weekly series as bars (counts) or a line (durations and rates).
pub(crate) fn series(
    label: &str,
    points: &[(i64, Option<f64>)],
    bars: bool,
    show: fn(Option<f64>) -> String,
) -> Markup {
    let most = points
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(0.0_f64, f64::max);
    let top = if most > 0.0 { most } else { 1.0 };
    let n = points.len().max(1) as f64;
    let slot = WIDTH / n;
    let y_of = |v: f64| 130.0 - v / top * 110.0;
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, (_, v))| {
            v.map(|v| format!("{},{}", fmt(slot * (i as f64 + 0.5)), fmt(y_of(v))))
        })
        .collect();
    html! {
        svg.chart.series viewBox=(format!("0 0 {WIDTH} 160")) role="img" aria-label=(label) {
            text.label x="0" y="12" { (label) " · max " (show(Some(most))) }
            line.axis x1="0" y1="130" x2=(WIDTH) y2="130" {}
            @if !bars {
                polyline.line points=(line.join(" ")) {}
            }
            @for (i, (week, value)) in points.iter().enumerate() {
                @let x = slot * i as f64;
                @if let Some(v) = value {
                    @if bars {
                        rect.bar.o-succeeded x=(fmt(x + slot * 0.15)) y=(fmt(y_of(*v))) width=(fmt(slot * 0.7)) height=(fmt(130.0 - y_of(*v))) {
                            title { (day_label(*week)) ": " (show(Some(*v))) }
                        }
                    } @else {
                        circle.point cx=(fmt(x + slot * 0.5)) cy=(fmt(y_of(*v))) r="4" {
                            title { (day_label(*week)) ": " (show(Some(*v))) }
                        }
                    }
                }
                @if i % 4 == 0 {
                    text.label x=(fmt(x + slot * 0.5)) y="150" text-anchor="middle" { (day_label(*week)) }
                }
            }
        }
    }
}

/// A horizontal bar of `value` against `most` (the latency of checks).
pub(crate) fn meter(value: Option<f64>, most: f64, label: &str) -> Markup {
    let w = value.map_or(0.0, |v| (v / most.max(1.0) * 200.0).clamp(1.0, 200.0));
    html! {
        svg.meter viewBox="0 0 200 12" role="img" aria-label=(label) {
            rect.track x="0" y="0" width="200" height="12" {}
            rect.fill x="0" y="0" width=(fmt(w)) height="12" { title { (label) } }
        }
    }
}
