//! `verify`: re-read the profiles an apply touched, through the same pacer as every other
//! request, and tell each removed identifier `gone`, `still present` (never yet seen gone:
//! propagation, or a delete that did not take) or `re-introduced` (seen gone by an earlier
//! verification, present now: live events, a replay or a rebuild re-added it). With `--wait`
//! it polls with back-off until nothing is still present or the deadline passes. Every run
//! is recorded in the state file (`status` shows the history), so it is safe on a schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Api, Ui, sniff};
use crate::cli::{VerifyArgs, VerifyFormat};
use crate::exit::Exit;
use crate::model::{Identifier, Lookup, USER_ID};
use crate::plan::Resolution;
use crate::render::{self, REDACTED, thousands};
use crate::state::verify::{Prior, Seen};
use crate::state::{ItemState, State, now_unix};

/// The first pause between two polls of `--wait`; each next one doubles, up to
/// [`MAX_POLL_DELAY`].
pub const FIRST_POLL_DELAY: Duration = Duration::from_secs(1);
/// The longest pause between two polls of `--wait`.
pub const MAX_POLL_DELAY: Duration = Duration::from_secs(30);

/// One removed identifier under verification.
struct Check {
    seq: u64,
    identifier: Identifier,
    seen: Option<Seen>,
}

/// `idprune verify STATE [--wait DURATION]`. SIGINT or SIGTERM stops it at once (nothing is
/// recorded: the verification is written when it ends) with 130 or 143.
pub async fn verify(args: &VerifyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    let mut signals = super::Signals::listen()?;
    tokio::select! {
        exit = run_verify(args, api, ui) => exit,
        signal = signals.next() => {
            ui.note(format!("\n{}: this verification was not recorded.", signal.name()));
            Ok(signal.exit())
        }
    }
}

async fn run_verify(args: &VerifyArgs, api: &Api, ui: &Ui) -> anyhow::Result<Exit> {
    sniff::expect_state(&args.state, "verify")?;
    let mut state = State::open(&args.state)?;
    if state.purged_at()?.is_some() {
        anyhow::bail!(
            "state file `{}` was purged: its identifiers are fingerprints and cannot be re-read",
            args.state.display()
        );
    }
    let meta = state.meta()?;
    let base = api.base_url(super::state_region(&meta)?)?;
    let concurrency = api.pace.concurrency as usize;
    let api = Arc::new(api.client(&base, &meta.space)?);
    // user_id → the identifiers removed from that profile.
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
    let priors = state.verify_priors()?;
    let started_at = now_unix();
    let start = Instant::now();
    let deadline = start + args.wait.unwrap_or_default();
    let mut delay = FIRST_POLL_DELAY;
    let mut polls = 0u32;
    loop {
        // Re-read every profile that still has an identifier not seen gone in this run.
        let pending: Vec<String> = profiles
            .iter()
            .filter(|(_, checks)| {
                checks
                    .iter()
                    .any(|c| c.seen.is_none() || c.seen == Some(Seen::StillPresent))
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        if pending.is_empty() {
            break;
        }
        if polls > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let pause = delay.min(deadline - now);
            {
                ui.note(format!(
                    "verify: {} profiles still show a removed identifier; reading again in {}",
                    thousands(pending.len() as u64),
                    humantime::format_duration(Duration::from_secs(pause.as_secs().max(1)))
                ));
            }
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(MAX_POLL_DELAY);
        }
        polls += 1;
        let lookups: Vec<Lookup> = pending
            .iter()
            .map(|uid| Lookup::External(Identifier::new(USER_ID, uid.clone())))
            .collect();
        // Each poll opens by slow start, so a token revoked since the apply costs one read.
        let mut window = crate::window::Window::new(concurrency);
        let resolved = crate::resolve::resolve_all(
            api.clone(),
            lookups,
            &mut window,
            Some(api.pacer().clone()),
            |_| {},
        )
        .await?;
        for uid in &pending {
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
    }
    let seen: Vec<(u64, Seen)> = profiles
        .values()
        .flatten()
        .filter_map(|c| c.seen.map(|s| (c.seq, s)))
        .collect();
    let verification = state.record_verification(started_at, polls, &seen)?;
    let count = |s: Seen| seen.iter().filter(|(_, x)| *x == s).count() as u64;
    let present = count(Seen::StillPresent) + count(Seen::Reintroduced);
    let mut out = std::io::BufWriter::new(super::ui::stdout());
    match args.format {
        VerifyFormat::Text => {
            let redact = args.redact;
            let value = |v: &str| {
                if redact {
                    REDACTED.to_owned()
                } else {
                    render::clean(v)
                }
            };
            for (uid, checks) in &profiles {
                for c in checks {
                    let Some(s) = c.seen.filter(|s| *s != Seen::Gone) else {
                        continue;
                    };
                    let since = match (s, priors.get(&c.seq)) {
                        (
                            Seen::Reintroduced,
                            Some(Prior {
                                last_gone_at: Some(at),
                                last_gone_in,
                                ..
                            }),
                        ) => format!(
                            " (last seen gone {}{})",
                            render::timestamp(*at),
                            last_gone_in
                                .map(|v| format!(", verification #{v}"))
                                .unwrap_or_default()
                        ),
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "#{} {s}: {}:{} on profile user_id:{}{since}",
                        c.seq,
                        render::clean(&c.identifier.kind),
                        value(&c.identifier.id),
                        value(uid),
                    )?;
                }
            }
            writeln!(
                out,
                "Verified {} removed identifiers on {} profiles: {} gone, {} still present, {} re-introduced{} (verification #{verification}, {} {} over {}).",
                thousands(seen.len() as u64),
                thousands(profiles.len() as u64),
                thousands(count(Seen::Gone)),
                thousands(count(Seen::StillPresent)),
                thousands(count(Seen::Reintroduced)),
                match count(Seen::NotFound) {
                    0 => String::new(),
                    n => format!(", {} on profiles not found", thousands(n)),
                },
                polls,
                if polls == 1 { "read" } else { "reads" },
                humantime::format_duration(Duration::from_secs(start.elapsed().as_secs())),
            )?;
        }
        VerifyFormat::Json => {
            let hide = !args.reveal;
            let items: Vec<_> = profiles
                .iter()
                .flat_map(|(uid, checks)| checks.iter().map(move |c| (uid, c)))
                .filter_map(|(uid, c)| {
                    let s = c.seen?;
                    let prior = priors.get(&c.seq);
                    Some(json!({
                        "seq": c.seq,
                        "user_id": if hide { REDACTED } else { uid.as_str() },
                        "identifier": {"type": c.identifier.kind,
                                       "id": if hide { REDACTED } else { c.identifier.id.as_str() }},
                        "status": s.as_str(),
                        "last_seen_gone_at": match s {
                            Seen::Gone => Some(render::timestamp(now_unix())),
                            _ => prior.and_then(|p| p.last_gone_at).map(render::timestamp),
                        },
                    }))
                })
                .collect();
            let value = json!({
                "format_version": "1.0",
                "digest": meta.digest,
                "verification": verification,
                "polls": polls,
                "checked": seen.len(),
                "gone": count(Seen::Gone),
                "still_present": count(Seen::StillPresent),
                "reintroduced": count(Seen::Reintroduced),
                "not_found": count(Seen::NotFound),
                "items": items,
            });
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    if count(Seen::StillPresent) > 0 {
        ui.note(
            if args.wait.is_some() {
                "The deadline passed with identifiers still present: the deletes may not have taken; check them, or verify again later."
            } else {
                "Segment's profile storage can lag up to about 5 minutes behind a delete: run `idprune verify STATE --wait 6m` to poll until they are gone."
            }
        );
    }
    if count(Seen::Reintroduced) > 0 {
        ui.note(
            "Re-introduced identifiers were re-added after they were gone: by live events, an Event Archive replay (see `idprune guard`) or a space rebuild (see `idprune apply --reapply`).",
        );
    }
    Ok(if present > 0 {
        Exit::Changes
    } else {
        Exit::Success
    })
}
