//! `apply`'s policy check, before a single request: the policy sealed in the plan must still
//! be the one on disk (a changed policy, or one that appeared after a plan made without one,
//! is refused: plan again), and its rules are judged again, now knowing the canary. A failed
//! hard rule refuses (exit 4); so does a failed soft rule unless `--override RULE --why TEXT`
//! names it, and then the override is recorded with the run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ApplyOptions;
use crate::ops::{Refused, state_dir};
use crate::plan::Action;
use crate::policy::{self, Deletion, Evaluator, Level, Summary};
use crate::render;
use crate::state::{ItemFilter, Meta, State};
use crate::ui::Ui;

/// A soft rule this apply goes past, to record with its run.
#[derive(Clone, Debug)]
pub(super) struct Granted {
    /// The rule.
    pub rule: String,
    /// What it found.
    pub detail: String,
}

/// Judges the plan in `state` by its sealed policy; the overrides to record. Refuses (exit 4)
/// on a changed policy or a rule that refuses the apply.
pub(super) fn check(state: &State, opts: &ApplyOptions, ui: &Ui) -> anyhow::Result<Vec<Granted>> {
    let meta = state.meta()?;
    let dir = state_dir(state.path());
    let Some(sealed) = sealed_policy(state, &meta, opts)? else {
        return Ok(Vec::new());
    };
    let file = opts
        .policy
        .clone()
        .unwrap_or_else(|| dir.join(&sealed.path));
    check_unchanged(&file, &sealed.sha256, opts.policy.is_some(), ui)?;
    let rules = sealed.policy(&file)?;
    let verdicts = judge(state, &rules, &meta, opts.canary)?;
    for o in &opts.overrides {
        if !verdicts.iter().any(|v| &v.rule == o) {
            let names: Vec<&str> = verdicts.iter().map(|v| v.rule.as_str()).collect();
            anyhow::bail!(
                "--override `{}` names no rule of policy `{}`; its rules are {}",
                render::clean(o),
                file.display(),
                names.join(", ")
            );
        }
    }
    let refusing: Vec<&policy::Verdict> = verdicts
        .iter()
        .filter(|v| policy::refuses(v, &opts.overrides))
        .collect();
    if !refusing.is_empty() {
        return Err(Refused(render::policy_refusal(
            &file.display().to_string(),
            &refusing,
            &opts.overrides,
        ))
        .into());
    }
    Ok(grant(&verdicts, opts, ui))
}

/// The policy sealed in the plan, checked against its seal; `None` for a plan made without
/// one, which is refused when a policy applies to its manifest now (or `--override` names a
/// rule).
fn sealed_policy(
    state: &State,
    meta: &Meta,
    opts: &ApplyOptions,
) -> anyhow::Result<Option<policy::Sealed>> {
    let dir = state_dir(state.path());
    match (&meta.policy_sha256, state.sealed_policy()?) {
        (None, None) => {
            let now = opts.policy.clone().or_else(|| {
                policy::find(&dir.join(&meta.manifest_path)).filter(|_| {
                    // `find` walks up from the manifest's folder: only when that folder is
                    // there (a manifest moved away leaves nothing to walk from).
                    dir.join(&meta.manifest_path)
                        .parent()
                        .is_some_and(Path::exists)
                })
            });
            if let Some(now) = now {
                return Err(Refused(format!(
                    "policy `{}` applies to this plan's manifest, but the plan was made without a policy; plan again so its rules judge the plan, and get the new plan approved",
                    now.display()
                ))
                .into());
            }
            if !opts.overrides.is_empty() {
                anyhow::bail!(
                    "--override {} names a policy rule, but the plan was made without a policy; drop --override",
                    opts.overrides.join(", ")
                );
            }
            Ok(None)
        }
        (Some(sha), Some(sealed)) if *sha == sealed.sha256 => Ok(Some(sealed)),
        _ => Err(Refused(format!(
            "state file `{}` holds a policy that does not match its seal; plan again",
            state.path().display()
        ))
        .into()),
    }
}

/// The verdicts of `rules` on the plan in `state`, now knowing the canary.
fn judge(
    state: &State,
    rules: &policy::Policy,
    meta: &Meta,
    canary: u64,
) -> anyhow::Result<Vec<policy::Verdict>> {
    let counts = state.counts()?;
    let mut judge = Evaluator::new(rules);
    state.for_each_item_in(ItemFilter::All, u64::MAX, |s| {
        if s.item.action == Action::Delete {
            judge.visit(&Deletion {
                seq: s.item.seq,
                kind: &s.item.identifier.kind,
                value: &s.item.identifier.id,
            });
        }
        Ok(())
    })?;
    Ok(judge.finish(&Summary {
        deletes: counts.action(Action::Delete),
        profiles: counts.delete_profiles,
        reason: &meta.reason,
        ttl: Duration::from_secs(meta.ttl_secs),
        canary: Some(canary),
    }))
}

/// The failed soft rules `--override` goes past, each said with the reason recorded; an
/// override of a rule that holds is said and not recorded.
fn grant(verdicts: &[policy::Verdict], opts: &ApplyOptions, ui: &Ui) -> Vec<Granted> {
    let mut granted = Vec::new();
    for v in verdicts {
        let named = opts.overrides.iter().any(|o| o == &v.rule);
        match (v.passed, v.level, named) {
            (false, Level::Soft, true) => {
                ui.warn(format!(
                    "policy rule `{}` (soft) fails: {}; overridden with --override, recorded with this run: \"{}\"",
                    v.rule,
                    render::clean(&v.detail),
                    render::clean(opts.why.as_deref().unwrap_or_default())
                ));
                granted.push(Granted {
                    rule: v.rule.clone(),
                    detail: v.detail.clone(),
                });
            }
            (true, _, true) => ui.note(format!(
                "--override {}: the rule holds, so there is nothing to override; nothing recorded.",
                v.rule
            )),
            _ => {}
        }
    }
    granted
}

/// Refuses when the policy file is not the sealed one any more. A policy file that is not
/// there is judged from the copy sealed in the plan (unless `--policy` named it).
fn check_unchanged(file: &PathBuf, sealed: &str, named: bool, ui: &Ui) -> anyhow::Result<()> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
            ui.warn(format!(
                "policy `{}` is not there; judging the plan by the copy sealed in it",
                file.display()
            ));
            return Ok(());
        }
        Err(e) => {
            return Err(policy::PolicyError::Io {
                path: file.clone(),
                source: e,
            }
            .into());
        }
    };
    let now = policy::sha256_hex(&bytes);
    if now != sealed {
        return Err(Refused(format!(
            "policy `{}` changed since the plan was made (sealed sha256 {}, now {}); plan again so the new rules judge it, and get the new plan approved",
            file.display(),
            &sealed[..sealed.len().min(12)],
            &now[..12]
        ))
        .into());
    }
    Ok(())
}
