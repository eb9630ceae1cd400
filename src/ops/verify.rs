//! `verify`: re-read the profiles an apply touched, through the same pacer as every other
//! request, and tell each removed identifier `gone`, `still present` (never yet seen gone:
//! propagation, or a delete that did not take) or `re-introduced` (seen gone by an earlier
//! verification, present now: live events, a replay or a rebuild re-added it). With `--wait`
//! it polls with back-off until nothing is still present or the deadline passes. Every run
//! is recorded in the state file (`status` shows the history), so it is safe on a schedule.
//! The [`Verified`] outcome is drawn by `render::verify_text` and `render::verify_json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::Api;
use super::poll::Poll;
use super::sniff;
use crate::model::{Identifier, Lookup, USER_ID};
use crate::outcome::{Check, Verified};
use crate::plan::Resolution;
use crate::state::verify::{Prior, Seen};
use crate::state::{ItemState, State, now_unix};
use crate::text::thousands;
use crate::ui::Ui;

/// The first pause between two polls of `--wait`; each next one doubles, up to
/// [`MAX_POLL_DELAY`].
pub const FIRST_POLL_DELAY: Duration = Duration::from_secs(1);
/// The longest pause between two polls of `--wait`.
pub const MAX_POLL_DELAY: Duration = Duration::from_secs(30);

/// What `verify` needs besides the [`Api`].
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The state file.
    pub state: PathBuf,
    /// Poll until nothing is still present or this long has passed (`None`: read once).
    pub wait: Option<Duration>,
}

/// `verify STATE [--wait DURATION]`: re-reads the touched profiles and records the
/// verification; the outcome says what each removed identifier looked like.
pub async fn verify(opts: &VerifyOptions, api: &Api, ui: &Ui) -> anyhow::Result<Verified> {
    sniff::expect_state(&opts.state, "verify")?;
    let mut state = State::open(&opts.state)?;
    if state.purged_at()?.is_some() {
        anyhow::bail!(
            "state file `{}` was purged: its identifiers are fingerprints and cannot be re-read",
            opts.state.display()
        );
    }
    let meta = state.meta()?;
    let base = api.base_url(super::state_region(&meta)?)?;
    let concurrency = api.pace.concurrency as usize;
    let api = Arc::new(api.client(&base, &meta.space)?);
    let mut profiles = removed_by_profile(&state)?;
    let priors = state.verify_priors()?;
    let started_at = now_unix();
    let start = Instant::now();
    let mut poll = Poll::new(
        opts.wait.unwrap_or_default(),
        FIRST_POLL_DELAY,
        MAX_POLL_DELAY,
    );
    let mut polls = 0u32;
    loop {
        let pending = not_seen_gone(&profiles);
        if pending.is_empty() {
            break;
        }
        if polls > 0 {
            let Some(pause) = poll.next_pause() else {
                break;
            };
            ui.note(format!(
                "verify: {} profiles still show a removed identifier; reading again in {}",
                thousands(pending.len() as u64),
                humantime::format_duration(Duration::from_secs(pause.as_secs().max(1)))
            ));
            tokio::time::sleep(pause).await;
        }
        polls += 1;
        read_again(&api, concurrency, &pending, &mut profiles, &priors).await?;
    }
    let seen: Vec<(u64, Seen)> = profiles
        .values()
        .flatten()
        .filter_map(|c| c.seen.map(|s| (c.seq, s)))
        .collect();
    let verification = state.record_verification(started_at, polls, &seen)?;
    Ok(Verified {
        digest: meta.digest,
        verification,
        polls,
        profiles,
        priors,
        elapsed: start.elapsed(),
        waited: opts.wait.is_some(),
    })
}

/// user_id → the identifiers removed from that profile (items `done` or `already_absent`),
/// none seen yet.
fn removed_by_profile(state: &State) -> anyhow::Result<BTreeMap<String, Vec<Check>>> {
    let mut profiles: BTreeMap<String, Vec<Check>> = BTreeMap::new();
    state.for_each_item(|s| {
        if let (ItemState::Done | ItemState::AlreadyAbsent, Some(uid)) =
            (s.journal.state, &s.item.user_id)
        {
            profiles.entry(uid.clone()).or_default().push(Check {
                seq: s.item.seq,
                identifier: s.item.identifier,
                seen: None,
            });
        }
        Ok(())
    })?;
    Ok(profiles)
}

/// The profiles that still have an identifier not seen gone in this run: those to re-read.
fn not_seen_gone(profiles: &BTreeMap<String, Vec<Check>>) -> Vec<String> {
    profiles
        .iter()
        .filter(|(_, checks)| {
            checks
                .iter()
                .any(|c| c.seen.is_none() || c.seen == Some(Seen::StillPresent))
        })
        .map(|(uid, _)| uid.clone())
        .collect()
}

/// Reads the `pending` profiles by user_id once and records what each check saw: `gone`,
/// `not_found`, `still present`, or `re-introduced` when an earlier read (this run's, or a
/// prior verification's) saw it gone.
async fn read_again(
    api: &Arc<crate::segment::Client>,
    concurrency: usize,
    pending: &[String],
    profiles: &mut BTreeMap<String, Vec<Check>>,
    priors: &BTreeMap<u64, Prior>,
) -> anyhow::Result<()> {
    let lookups: Vec<Lookup> = pending
        .iter()
        .map(|uid| Lookup::External(Identifier::new(USER_ID, uid.clone())))
        .collect();
    // Each poll opens by slow start, so a token revoked since the apply costs one read.
    let mut window = crate::window::Window::new(concurrency);
    let resolved = crate::resolve::resolve_all(api.clone(), lookups, &mut window, |_| {}).await?;
    for uid in pending {
        let lookup = Lookup::External(Identifier::new(USER_ID, uid.clone()));
        let ids: Option<BTreeSet<&Identifier>> = match resolved.get(&lookup) {
            Some(Resolution::Found(ids)) => Some(ids.iter().collect()),
            _ => None,
        };
        for check in profiles.get_mut(uid).into_iter().flatten() {
            let was_gone = check.seen == Some(Seen::Gone)
                || priors
                    .get(&check.seq)
                    .is_some_and(|p| p.last_gone_at.is_some());
            check.seen = Some(match &ids {
                None => Seen::NotFound,
                Some(ids) if !ids.contains(&check.identifier) => Seen::Gone,
                Some(_) if was_gone => Seen::Reintroduced,
                Some(_) => Seen::StillPresent,
            });
        }
    }
    Ok(())
}
