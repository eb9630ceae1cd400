//! The views of a verification: one line per identifier still there (text) or every
//! identifier checked (JSON), over the same [`Verified`] outcome.

use std::io::{self, Write};
use std::time::Duration;

use serde_json::json;

use crate::outcome::Verified;
use crate::state::now_unix;
use crate::state::verify::{Prior, Seen};
use crate::text::{REDACTED, clean, thousands, timestamp};

/// Identifiers the text view lists per state at most (`--format json` lists every one).
pub const VERIFY_ROWS: usize = 20;

/// What to do about what a verification found, most useful first.
pub fn verify_hints(v: &Verified) -> Vec<&'static str> {
    let mut hints = Vec::new();
    if v.count(Seen::StillPresent) > 0 {
        hints.push(if v.waited {
            "The deadline passed with identifiers still present: the deletes may not have taken; check them, or verify again later."
        } else {
            "Segment's profile storage can lag up to about 5 minutes behind a delete: run `idprune verify STATE --wait 6m` to poll until they are gone."
        });
    }
    if v.count(Seen::Reintroduced) > 0 {
        hints.push(
            "Re-introduced identifiers were re-added after they were gone: by live events, an Event Archive replay (see `idprune guard`) or a space rebuild (see `idprune apply --reapply`).",
        );
    }
    hints
}

/// The text view, summary first: the counts by state, what to do next, then the identifiers
/// not gone by state, in item order, at most [`VERIFY_ROWS`] a state. `redact` hides values.
pub fn verify_text(v: &Verified, redact: bool, out: &mut impl Write) -> io::Result<()> {
    let value = |x: &str| {
        if redact {
            REDACTED.to_owned()
        } else {
            clean(x)
        }
    };
    writeln!(
        out,
        "Verified {} removed identifiers on {} profiles: {} gone, {} still present, {} re-introduced{} (verification #{}, {} {} over {}).",
        thousands(v.seen().count() as u64),
        thousands(v.profiles.len() as u64),
        thousands(v.count(Seen::Gone)),
        thousands(v.count(Seen::StillPresent)),
        thousands(v.count(Seen::Reintroduced)),
        match v.count(Seen::NotFound) {
            0 => String::new(),
            n => format!(", {} on profiles not found", thousands(n)),
        },
        v.verification,
        v.polls,
        if v.polls == 1 { "read" } else { "reads" },
        humantime::format_duration(Duration::from_secs(v.elapsed.as_secs())),
    )?;
    for hint in verify_hints(v) {
        writeln!(out, "{hint}")?;
    }
    // Every identifier not gone, by item number (numerically, not as text).
    let mut found: Vec<_> = v
        .profiles
        .iter()
        .flat_map(|(uid, checks)| checks.iter().map(move |c| (uid, c)))
        .filter_map(|(uid, c)| {
            c.seen
                .filter(|s| *s != Seen::Gone)
                .map(|s| (s, c.seq, uid, c))
        })
        .collect();
    found.sort_by_key(|(_, seq, _, _)| *seq);
    for state in [Seen::StillPresent, Seen::Reintroduced, Seen::NotFound] {
        let of_state: Vec<_> = found.iter().filter(|(s, ..)| *s == state).collect();
        if of_state.is_empty() {
            continue;
        }
        let title = capitalized(&state.to_string());
        writeln!(out, "\n{title} ({}):", thousands(of_state.len() as u64))?;
        for (s, seq, uid, c) in of_state.iter().take(VERIFY_ROWS) {
            let since = last_seen_gone(v, *s, *seq);
            writeln!(
                out,
                "  #{seq} {}:{} on profile user_id:{}{since}",
                clean(&c.identifier.kind),
                value(&c.identifier.id),
                value(uid),
            )?;
        }
        if of_state.len() > VERIFY_ROWS {
            writeln!(
                out,
                "  … and {} more (`--format json` lists every one)",
                thousands((of_state.len() - VERIFY_ROWS) as u64)
            )?;
        }
    }
    Ok(())
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// For an identifier re-introduced, when (and in which verification) it was last seen gone;
/// nothing otherwise.
fn last_seen_gone(v: &Verified, state: Seen, seq: u64) -> String {
    match (state, v.priors.get(&seq)) {
        (
            Seen::Reintroduced,
            Some(Prior {
                last_gone_at: Some(at),
                last_gone_in,
                ..
            }),
        ) => format!(
            " (last seen gone {}{})",
            timestamp(*at),
            last_gone_in
                .map(|v| format!(", verification #{v}"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// The JSON view: every identifier checked, values hidden unless `reveal`.
pub fn verify_json(v: &Verified, reveal: bool, out: &mut impl Write) -> io::Result<()> {
    let hide = !reveal;
    let items: Vec<_> = v
        .profiles
        .iter()
        .flat_map(|(uid, checks)| checks.iter().map(move |c| (uid, c)))
        .filter_map(|(uid, c)| {
            let s = c.seen?;
            let prior = v.priors.get(&c.seq);
            Some(json!({
                "seq": c.seq,
                "user_id": if hide { REDACTED } else { uid.as_str() },
                "identifier": {"type": c.identifier.kind,
                               "id": if hide { REDACTED } else { c.identifier.id.as_str() }},
                "status": s.as_str(),
                "last_seen_gone_at": match s {
                    Seen::Gone => Some(timestamp(now_unix())),
                    _ => prior.and_then(|p| p.last_gone_at).map(timestamp),
                },
            }))
        })
        .collect();
    let value = json!({
        "format_version": "1.0",
        "digest": v.digest,
        "verification": v.verification,
        "polls": v.polls,
        "checked": v.seen().count(),
        "gone": v.count(Seen::Gone),
        "still_present": v.count(Seen::StillPresent),
        "reintroduced": v.count(Seen::Reintroduced),
        "not_found": v.count(Seen::NotFound),
        "items": items,
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)?;
    Ok(())
}
