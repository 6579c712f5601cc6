//! The GitHub Actions context of a run, read in one place from the variables map.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What GitHub Actions tells a job about itself (`GITHUB_*` variables), or nothing outside
/// Actions. Every field is `None` when its variable is unset or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionsContext {
    /// `GITHUB_ACTIONS=true`: running in a GitHub Actions job.
    pub in_actions: bool,
    /// `GITHUB_ACTOR`: who started the workflow.
    pub actor: Option<String>,
    /// `USER`: the local user, for runs outside Actions.
    pub user: Option<String>,
    /// `GITHUB_SERVER_URL` (`https://github.com` when unset).
    pub server_url: Option<String>,
    /// `GITHUB_REPOSITORY`: `OWNER/NAME`.
    pub repository: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_SHA`: the commit the workflow runs for.
    pub sha: Option<String>,
    /// `GITHUB_EVENT_PATH`: the JSON payload of the event that started the workflow.
    pub event_path: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: the file whose markdown the run's page shows.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_OUTPUT`: the file of the step's outputs (`name=value` lines).
    pub output: Option<PathBuf>,
}

impl ActionsContext {
    /// Reads the context from a variables map (the process environment, in the CLI).
    pub fn from_vars(vars: &BTreeMap<String, String>) -> ActionsContext {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        ActionsContext {
            in_actions: vars.get("GITHUB_ACTIONS").map(String::as_str) == Some("true"),
            actor: get("GITHUB_ACTOR"),
            user: get("USER"),
            server_url: get("GITHUB_SERVER_URL"),
            repository: get("GITHUB_REPOSITORY"),
            run_id: get("GITHUB_RUN_ID"),
            sha: get("GITHUB_SHA"),
            event_path: get("GITHUB_EVENT_PATH").map(PathBuf::from),
            step_summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            output: get("GITHUB_OUTPUT").map(PathBuf::from),
        }
    }

    /// Who runs the deploy: the Actions actor, else the local user, else `unknown`.
    pub fn owner(&self) -> String {
        self.actor
            .clone()
            .or_else(|| self.user.clone())
            .unwrap_or_else(|| "unknown".into())
    }

    /// The URL of the Actions run this is part of, when running in one.
    pub fn run_url(&self) -> Option<String> {
        Some(format!(
            "{}/{}/actions/runs/{}",
            self.server_url.as_deref().unwrap_or("https://github.com"),
            self.repository.as_deref()?,
            self.run_id.as_deref()?
        ))
    }

    /// The links a run's summary carries: the Actions run and the commit, when known.
    pub fn links(&self, tag: &str) -> Vec<shipgate_pipeline::Link> {
        let mut links = Vec::new();
        if let Some(url) = self.run_url() {
            links.push(shipgate_pipeline::Link {
                label: "Actions run".to_owned(),
                url,
            });
        }
        if let (Some(repository), Some(sha)) = (&self.repository, self.full_sha(tag)) {
            links.push(shipgate_pipeline::Link {
                label: "Commit".to_owned(),
                url: format!(
                    "{}/{repository}/commit/{sha}",
                    self.server_url.as_deref().unwrap_or("https://github.com")
                ),
            });
        }
        links
    }

    /// The full commit SHA being deployed: `GITHUB_SHA`, or the image tag when it is one.
    pub fn full_sha(&self, tag: &str) -> Option<String> {
        let full = |s: &str| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit());
        self.sha
            .clone()
            .filter(|s| full(s))
            .or_else(|| full(tag).then(|| tag.to_owned()))
    }

    /// When the deployed commit was made (unix milliseconds), from the event that started the
    /// workflow: the `head_commit` of a push, or of the workflow run that triggered this one,
    /// when it is the commit deployed (the image tag as a SHA or a SHA prefix of at least 7
    /// characters; otherwise `GITHUB_SHA`). `None` when unknown.
    pub fn commit_time_ms(&self, tag: &str) -> Option<i64> {
        let text = std::fs::read_to_string(self.event_path.as_ref()?).ok()?;
        let event: serde_json::Value = serde_json::from_str(&text).ok()?;
        let head = event
            .get("head_commit")
            .filter(|h| h.is_object())
            .or_else(|| event.pointer("/workflow_run/head_commit"))?;
        let id = head.get("id")?.as_str()?;
        let tag_is_sha = tag.len() >= 7 && tag.chars().all(|c| c.is_ascii_hexdigit());
        let deployed = if tag_is_sha {
            id.starts_with(tag)
        } else {
            self.sha.as_deref() == Some(id)
        };
        if !deployed {
            return None;
        }
        chrono::DateTime::parse_from_rfc3339(head.get("timestamp")?.as_str()?)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn context(event: &serde_json::Value, sha: &str) -> (tempfile::TempDir, ActionsContext) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, event.to_string()).unwrap();
        let vars = BTreeMap::from([
            ("GITHUB_EVENT_PATH".to_owned(), path.display().to_string()),
            ("GITHUB_SHA".to_owned(), sha.to_owned()),
        ]);
        (dir, ActionsContext::from_vars(&vars))
    }

    #[test]
    fn the_commit_time_comes_from_the_event_of_the_deployed_commit() {
        let sha = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
        // A push (GitHub's push payload: head_commit.id and .timestamp with an offset).
        let push = serde_json::json!({"head_commit": {"id": sha, "timestamp": "2026-11-23T10:15:00+01:00"}});
        let (_dir, ctx) = context(&push, sha);
        assert_eq!(ctx.commit_time_ms("3f2c1a9"), Some(1_795_425_300_000));
        assert_eq!(ctx.commit_time_ms("v1.4.2"), Some(1_795_425_300_000));
        // Another commit deployed by tag: not this event's.
        assert_eq!(ctx.commit_time_ms("9999999"), None);
        // A workflow_run event carries it under workflow_run.
        let run = serde_json::json!({"workflow_run": {"head_commit": {"id": sha, "timestamp": "2026-11-23T09:15:00Z"}}});
        let (_dir, ctx) = context(&run, "ffffffffffffffffffffffffffffffffffffffff");
        assert_eq!(ctx.commit_time_ms(sha), Some(1_795_425_300_000));
        // workflow_dispatch has none; no event file at all is unknown too.
        let (_dir, ctx) = context(&serde_json::json!({"inputs": {}}), sha);
        assert_eq!(ctx.commit_time_ms(sha), None);
        assert_eq!(ActionsContext::default().commit_time_ms(sha), None);
    }

    #[test]
    fn the_run_url_owner_and_full_sha_come_from_the_variables() {
        let vars = BTreeMap::from([
            ("GITHUB_REPOSITORY".to_owned(), "acme/shop".to_owned()),
            ("GITHUB_RUN_ID".to_owned(), "42".to_owned()),
            ("GITHUB_ACTOR".to_owned(), String::new()),
            ("USER".to_owned(), "dev".to_owned()),
            ("GITHUB_SHA".to_owned(), "abc".to_owned()),
        ]);
        let ctx = ActionsContext::from_vars(&vars);
        assert_eq!(
            ctx.run_url().as_deref(),
            Some("https://github.com/acme/shop/actions/runs/42")
        );
        assert_eq!(ctx.owner(), "dev");
        let sha = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
        assert_eq!(ctx.full_sha(sha).as_deref(), Some(sha));
        assert_eq!(ctx.full_sha("v1.2.3"), None);
        assert!(!ctx.in_actions);
    }
}
