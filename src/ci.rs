//! Who ran it: the CI context an apply run records beside its user and host, so the record of
//! a run says which job, which repository and which pull request made the deletions.
//!
//! On GitHub Actions (`GITHUB_ACTIONS=true`) the context is read from the variables every job
//! has: the actor, the repository, the run's URL (with its attempt), and, for a pull-request
//! event, the PR number and head SHA from the event payload (`GITHUB_EVENT_PATH`). Elsewhere
//! (GitLab, Jenkins, a laptop) `IDPRUNE_RUN_CONTEXT` is recorded as given, for example
//! `IDPRUNE_RUN_CONTEXT="$CI_JOB_URL"`. Nothing here is trusted for a decision: the context is
//! a record for people, escaped wherever it is shown.
//!
//! This module reads the environment and, on GitHub, one bounded JSON file; it writes nothing.

use serde::{Deserialize, Serialize};

/// The variable a non-GitHub CI (or a person) sets to record where a run came from.
pub const RUN_CONTEXT_VAR: &str = "IDPRUNE_RUN_CONTEXT";
/// The longest context value kept, in characters; longer ones are cut (a record, not a log).
const MAX_FIELD_CHARS: usize = 300;
/// The most of a GitHub event payload read: PR payloads are tens of KiB; the file is not ours.
const MAX_EVENT_BYTES: u64 = 4 << 20;

/// Where a run came from. Every field is optional: a CI records what it knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunContext {
    /// The CI that ran it (`github`), or empty for `IDPRUNE_RUN_CONTEXT` alone.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ci: String,
    /// The account that triggered the job (`GITHUB_ACTOR`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// `owner/name` (`GITHUB_REPOSITORY`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub repository: String,
    /// The job's run URL, with its attempt.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_url: String,
    /// The pull request, when the job runs for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_number: Option<u64>,
    /// The commit: the PR's head for a pull-request job, else `GITHUB_SHA`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub head_sha: String,
    /// `IDPRUNE_RUN_CONTEXT`, as given (cut to a few hundred characters).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl RunContext {
    /// The context of this process, from its environment; `None` outside CI with no
    /// `IDPRUNE_RUN_CONTEXT`.
    pub fn detect() -> Option<Self> {
        Self::from_env(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The context that `var` describes (a testable [`RunContext::detect`]).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let mut context = Self {
            note: var(RUN_CONTEXT_VAR).map(|v| cut(&v)).unwrap_or_default(),
            ..Self::default()
        };
        if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            context.ci = "github".into();
            let field = |name: &str| var(name).map(|v| cut(&v)).unwrap_or_default();
            context.actor = field("GITHUB_ACTOR");
            context.repository = field("GITHUB_REPOSITORY");
            if let (Some(server), Some(id)) = (var("GITHUB_SERVER_URL"), var("GITHUB_RUN_ID")) {
                let mut url = format!(
                    "{}/{}/actions/runs/{}",
                    server.trim_end_matches('/'),
                    context.repository,
                    id
                );
                if let Some(attempt) = var("GITHUB_RUN_ATTEMPT") {
                    url.push_str(&format!("/attempts/{attempt}"));
                }
                context.run_url = cut(&url);
            }
            context.head_sha = field("GITHUB_SHA");
            if let Some(pr) = var("GITHUB_EVENT_PATH")
                .and_then(|p| read_event(&p))
                .and_then(|e| e.pull_request)
            {
                context.pr_number = Some(pr.number);
                if let Some(head) = pr.head {
                    context.head_sha = cut(&head.sha);
                }
            }
            if context.pr_number.is_none() {
                context.pr_number = var("GITHUB_REF").as_deref().and_then(pr_of_ref);
            }
        }
        (context != Self::default()).then_some(context)
    }

    /// The context as one line for people: `github: octocat in acme/plans, PR #12 at
    /// 1a2b3c4d5e6f, https://github.com/...; note`. Values are as recorded: callers escape
    /// them for their medium.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let mut who = String::new();
        if !self.actor.is_empty() {
            who.push_str(&self.actor);
        }
        if !self.repository.is_empty() {
            if !who.is_empty() {
                who.push_str(" in ");
            }
            who.push_str(&self.repository);
        }
        if !who.is_empty() {
            parts.push(who);
        }
        match (self.pr_number, self.head_sha.is_empty()) {
            (Some(pr), false) => parts.push(format!("PR #{pr} at {}", short(&self.head_sha))),
            (Some(pr), true) => parts.push(format!("PR #{pr}")),
            (None, false) => parts.push(format!("commit {}", short(&self.head_sha))),
            (None, true) => {}
        }
        if !self.run_url.is_empty() {
            parts.push(self.run_url.clone());
        }
        if !self.note.is_empty() {
            parts.push(self.note.clone());
        }
        let body = parts.join(", ");
        if self.ci.is_empty() {
            body
        } else {
            format!("{}: {body}", self.ci)
        }
    }

    /// The context as stored in the state file (compact JSON).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings and numbers serialises")
    }

    /// The context read back from the state file: `None` for an empty column. A value that is
    /// not a context (the file is checked, so only a hand edit makes one) is kept as a note.
    pub fn from_stored(stored: &str) -> Option<Self> {
        if stored.is_empty() {
            return None;
        }
        Some(serde_json::from_str(stored).unwrap_or_else(|_| Self {
            note: cut(stored),
            ..Self::default()
        }))
    }
}

/// The first 12 hex digits of a commit.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// `refs/pull/12/merge` → 12.
fn pr_of_ref(git_ref: &str) -> Option<u64> {
    git_ref
        .strip_prefix("refs/pull/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// At most [`MAX_FIELD_CHARS`] characters of `value`.
fn cut(value: &str) -> String {
    value.chars().take(MAX_FIELD_CHARS).collect()
}

/// The parts of a GitHub event payload this module reads.
#[derive(Deserialize)]
struct Event {
    pull_request: Option<PullRequest>,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    head: Option<Head>,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

/// The event payload at `path`, when it is a readable regular file of at most
/// [`MAX_EVENT_BYTES`] holding JSON; `None` otherwise (the context is a record, not a check).
fn read_event(path: &str) -> Option<Event> {
    let bytes = crate::bounded::read_regular(
        std::path::Path::new(path),
        "GitHub event payload",
        MAX_EVENT_BYTES,
    )
    .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const GITHUB: &[(&str, &str)] = &[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_REPOSITORY", "acme/plans"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
    ];

    #[test]
    fn nothing_outside_ci_without_the_variable() {
        assert_eq!(RunContext::from_env(env(&[])), None);
        assert_eq!(
            RunContext::from_env(env(&[("GITHUB_ACTIONS", "false")])),
            None
        );
    }

    #[test]
    fn a_push_job_on_github() {
        let c = RunContext::from_env(env(GITHUB)).expect("context");
        assert_eq!(c.actor, "octocat");
        assert_eq!(
            c.run_url,
            "https://github.com/acme/plans/actions/runs/42/attempts/2"
        );
        assert_eq!(c.pr_number, None);
        assert_eq!(
            c.summary(),
            "github: octocat in acme/plans, commit 0123456789ab, https://github.com/acme/plans/actions/runs/42/attempts/2"
        );
    }

    #[test]
    fn a_pull_request_job_takes_the_head_from_the_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"action":"synchronize","pull_request":{"number":17,"head":{"sha":"feedfacefeedfacefeedfacefeedfacefeedface"}}}"#,
        )
        .expect("write");
        let mut vars = GITHUB.to_vec();
        let path = event.display().to_string();
        vars.push(("GITHUB_EVENT_PATH", &path));
        let c = RunContext::from_env(env(&vars)).expect("context");
        assert_eq!(c.pr_number, Some(17));
        assert_eq!(c.head_sha, "feedfacefeedfacefeedfacefeedfacefeedface");
        assert!(
            c.summary().contains("PR #17 at feedfacefeed"),
            "{}",
            c.summary()
        );
    }

    #[test]
    fn the_pr_number_falls_back_to_the_ref() {
        let mut vars = GITHUB.to_vec();
        vars.push(("GITHUB_REF", "refs/pull/9/merge"));
        vars.push(("GITHUB_EVENT_PATH", "/nonexistent/event.json"));
        let c = RunContext::from_env(env(&vars)).expect("context");
        assert_eq!(c.pr_number, Some(9));
        assert_eq!(pr_of_ref("refs/heads/main"), None);
    }

    #[test]
    fn elsewhere_the_variable_is_recorded_cut() {
        let long = "x".repeat(1000);
        let c = RunContext::from_env(env(&[(RUN_CONTEXT_VAR, &long)])).expect("context");
        assert_eq!(c.note.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(c.ci, "");
        let c = RunContext::from_env(env(&[(RUN_CONTEXT_VAR, "jenkins #88")])).expect("context");
        assert_eq!(c.summary(), "jenkins #88");
    }

    #[test]
    fn stored_and_read_back() {
        let c = RunContext::from_env(env(GITHUB)).expect("context");
        assert_eq!(RunContext::from_stored(&c.to_stored()), Some(c));
        assert_eq!(RunContext::from_stored(""), None);
        assert_eq!(
            RunContext::from_stored("not json").map(|c| c.note),
            Some("not json".to_owned())
        );
    }
}
