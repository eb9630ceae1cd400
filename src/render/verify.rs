//! The views of a verification: one line per identifier still there (text) or every
//! identifier checked (JSON), over the same [`Verified`] outcome.

use std::io::{self, Write};
use std::time::Duration;

use serde_json::json;

use crate::outcome::Verified;
use crate::state::now_unix;
use crate::state::verify::{Prior, Seen};
use crate::text::{REDACTED, clean, thousands, timestamp};

/// The text view: the identifiers not gone, then the summary line. `redact` hides values.
pub fn verify_text(v: &Verified, redact: bool, out: &mut impl Write) -> io::Result<()> {
    let value = |x: &str| {
        if redact {
            REDACTED.to_owned()
        } else {
            clean(x)
        }
    };
    for (uid, checks) in &v.profiles {
        for c in checks {
            let Some(s) = c.seen.filter(|s| *s != Seen::Gone) else {
                continue;
            };
            let since = match (s, v.priors.get(&c.seq)) {
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
            };
            writeln!(
                out,
                "#{} {s}: {}:{} on profile user_id:{}{since}",
                c.seq,
                clean(&c.identifier.kind),
                value(&c.identifier.id),
                value(uid),
            )?;
        }
    }
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
    Ok(())
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
