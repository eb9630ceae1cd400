//! The JSON forms' shared writer: the head every view starts with (sealed facts, summary),
//! then the items streamed from the state file one object a line, then the view's own tail.

use std::io::Write;

use serde_json::{Value, json};

use super::{REDACTED, expires_at, timestamp};
use crate::plan::Action;
use crate::state::{Counts, FORMAT_VERSION, ItemFilter, ItemState, Meta, State, StoredItem};
use crate::text::Redaction;

fn by_name<K: Copy>(
    keys: impl IntoIterator<Item = K>,
    name: impl Fn(K) -> &'static str,
    count: impl Fn(K) -> u64,
) -> Value {
    let map: serde_json::Map<String, Value> = keys
        .into_iter()
        .map(|k| (name(k).to_owned(), json!(count(k))))
        .collect();
    Value::Object(map)
}

/// The JSON `summary` object.
fn summary_json(counts: &Counts) -> Value {
    json!({
        "by_action": by_name(Action::ALL, Action::as_str, |a| counts.action(a)),
        "by_state": by_name(ItemState::ALL, ItemState::as_str, |s| counts.state(s)),
        "delete_profiles": counts.delete_profiles,
        "estimate": {
            "requests": super::Estimate::of(counts).requests,
            "seconds_at_space_limit": super::Estimate::of(counts).seconds,
            "space_limit_per_second": super::SPACE_LIMIT_PER_SECOND,
        },
    })
}

fn item_json(s: &StoredItem, r: Redaction, masker: &crate::mask::Masker) -> Value {
    let value = |v: &str| {
        if r.0 {
            REDACTED.to_owned()
        } else {
            v.to_owned()
        }
    };
    let lookup = if r.0 {
        r.lookup(&s.item.lookup)
    } else {
        s.item.lookup.clone()
    };
    // Redacted items carry the keyed fingerprint of their identifier, the same as the
    // markdown view's (`~1a2b3c4d`), so views made with one key can be matched up.
    let fingerprint =
        r.0.then(|| masker.fingerprint(&s.item.identifier.kind, &s.item.identifier.id));
    json!({
        "seq": s.item.seq,
        "profile": lookup,
        "fingerprint": fingerprint,
        "user_id": s.item.user_id.as_deref().map(value),
        "identifier": {"type": s.item.identifier.kind, "id": value(&s.item.identifier.id)},
        "action": s.item.action.as_str(),
        "state": s.journal.state.as_str(),
        "attempts": s.attempts,
        "last_error": s.journal.last_error,
        "last_status": s.journal.last_status,
        "request_id": s.journal.request_id,
        "note": s.item.note,
        "origin": s.item.origin,
    })
}

/// The fields every JSON view starts with: sealed facts, expiry, redaction and the summary.
pub(super) fn head_json(
    meta: &Meta,
    counts: &Counts,
    r: Redaction,
) -> serde_json::Map<String, Value> {
    let v = json!({
        "format_version": format!("{FORMAT_VERSION}.0"),
        "digest": meta.digest,
        "space": meta.space,
        "region": meta.region,
        "api": meta.api_origin,
        "reason": meta.reason,
        "created_at": timestamp(meta.created_at),
        "expires_at": timestamp(expires_at(meta)),
        "redacted": r.0,
        "summary": summary_json(counts),
    });
    match v {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Writes one JSON object: the fields of `head`, then `items` streamed from `state` (one
/// compact object a line), then the fields of `tail`.
pub(super) fn json_with_items(
    head: serde_json::Map<String, Value>,
    state: &State,
    r: Redaction,
    tail: serde_json::Map<String, Value>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(out, "{{")?;
    for (key, value) in &head {
        writeln!(out, "  {}: {},", Value::String(key.clone()), value)?;
    }
    write!(out, "  \"items\": [")?;
    let masker = crate::mask::Masker::for_state(state, None)?;
    let mut first = true;
    state.for_each_item_in(ItemFilter::All, u64::MAX, |s| {
        write!(
            out,
            "{}\n    {}",
            if first { "" } else { "," },
            item_json(&s, r, &masker)
        )?;
        first = false;
        Ok(())
    })?;
    write!(out, "{}]", if first { "" } else { "\n  " })?;
    for (key, value) in &tail {
        write!(out, ",\n  {}: {}", Value::String(key.clone()), value)?;
    }
    writeln!(out, "\n}}")?;
    Ok(())
}
