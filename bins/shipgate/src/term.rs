//! How progress looks: on a terminal, colour and one live line that waits rewrite in place;
//! in CI, in a pipe, under `NO_COLOR` or `TERM=dumb`, plain lines (one per event), as before.
//!
//! Text is made printable first ([`crate::for_people`]: secrets masked, control characters
//! escaped); the only escape sequences written are this module's own.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;

use shipgate_pipeline::PipelineEvent;

/// What a line says, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Plain progress.
    Plain,
    /// Something went well.
    Good,
    /// Something needs attention.
    Warn,
    /// Something failed.
    Bad,
    /// Less important.
    Dim,
}

impl Tone {
    fn code(self) -> &'static str {
        match self {
            Tone::Plain => "",
            Tone::Good => "\x1b[32m",
            Tone::Warn => "\x1b[33m",
            Tone::Bad => "\x1b[31m",
            Tone::Dim => "\x1b[2m",
        }
    }
}

/// Erases the current terminal line and returns the cursor to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";
const RESET: &str = "\x1b[0m";

/// Whether output to a stream that `is_terminal` gets colour (and live lines): not when
/// `NO_COLOR` is set (any value, <https://no-color.org>), `TERM=dumb`, or `CI` /
/// `GITHUB_ACTIONS` say it is a CI log.
pub(crate) fn styled(vars: &BTreeMap<String, String>, is_terminal: bool) -> bool {
    let set = |name: &str| vars.get(name).is_some_and(|v| !v.is_empty());
    is_terminal
        && !vars.contains_key("NO_COLOR")
        && vars.get("TERM").is_none_or(|t| t != "dumb")
        && !set("CI")
        && !set("GITHUB_ACTIONS")
}

/// `mark` in `tone`'s colour when `styled`; as is otherwise. `mark` is shipgate's own text.
pub(crate) fn paint(styled: bool, tone: Tone, mark: &str) -> String {
    if styled && tone != Tone::Plain {
        format!("{}{mark}{RESET}", tone.code())
    } else {
        mark.to_owned()
    }
}

/// Where progress lines go (stderr).
pub(crate) struct Progress {
    live: bool,
    /// Whether a transient line is on screen now (to be erased before the next line).
    showing: Mutex<bool>,
    /// Transient lines are cut to this many characters so that they stay on one row.
    width: usize,
}

impl Progress {
    /// Live lines and colour only when stderr is a terminal and nothing asks for plain text
    /// ([`styled`]).
    pub(crate) fn detect(vars: &BTreeMap<String, String>) -> Progress {
        let live = styled(vars, std::io::stderr().is_terminal());
        let width = vars
            .get("COLUMNS")
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|w| *w >= 20)
            .unwrap_or(100);
        Progress {
            live,
            showing: Mutex::new(false),
            width,
        }
    }

    /// A line that stays.
    pub(crate) fn line(&self, tone: Tone, text: &str) {
        let text = crate::for_people(text);
        let mut showing = self
            .showing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut err = std::io::stderr().lock();
        let _ = if !self.live {
            writeln!(err, "{text}")
        } else {
            let clear = if *showing { CLEAR_LINE } else { "" };
            let (start, end) = match tone {
                Tone::Plain => ("", ""),
                other => (other.code(), RESET),
            };
            writeln!(err, "{clear}{start}{text}{end}")
        };
        *showing = false;
    }

    /// A line the next one replaces on a terminal (a wait's progress); a plain line otherwise.
    pub(crate) fn transient(&self, text: &str) {
        if !self.live {
            self.line(Tone::Plain, text);
            return;
        }
        let text = crate::for_people(text);
        let cut: String = if text.chars().count() > self.width {
            let mut cut: String = text.chars().take(self.width.saturating_sub(1)).collect();
            cut.push('…');
            cut
        } else {
            text
        };
        let mut showing = self
            .showing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR_LINE}{}{cut}{RESET}", Tone::Dim.code());
        let _ = err.flush();
        *showing = true;
    }

    /// Ends a transient line so that what follows starts on a clean row.
    pub(crate) fn finish(&self) {
        let mut showing = self
            .showing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *showing {
            let _ = write!(std::io::stderr(), "{CLEAR_LINE}");
            *showing = false;
        }
    }

    /// One event of a deploy: waits are transient, the rest stay, coloured by what they say.
    pub(crate) fn event(&self, event: &PipelineEvent) {
        let text = format!("deploy: {event}");
        match event {
            PipelineEvent::Waiting { .. }
            | PipelineEvent::LockWaiting { .. }
            | PipelineEvent::Observing { .. } => self.transient(&text),
            PipelineEvent::Healthy { .. }
            | PipelineEvent::RolledBack { .. }
            | PipelineEvent::Switched { .. }
            | PipelineEvent::Aborted { .. } => self.line(Tone::Good, &text),
            PipelineEvent::RollingBack { .. }
            | PipelineEvent::Aborting { .. }
            | PipelineEvent::Warning { .. }
            | PipelineEvent::LockNote { .. } => self.line(Tone::Warn, &text),
            PipelineEvent::TargetFailed { .. } => self.line(Tone::Bad, &text),
            _ => self.line(Tone::Plain, &text),
        }
    }
}
