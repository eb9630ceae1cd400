//! The markdown view's counts, read from the state file in a few grouped queries: items per
//! identifier type and action, per source file, and the change shapes ("one email at
//! @import.invalid") with how many profiles share each.

use std::collections::BTreeMap;

use super::escape::escape;
use crate::mask::Masker;
use crate::state::State;
use crate::text::thousands;

/// Change shapes tracked at most; further distinct shapes count as "other".
const MAX_SHAPES: usize = 10_000;

/// Counts per identifier type and action, per source file, and change shapes.
pub(super) struct Breakdown {
    pub(super) by_type: BTreeMap<String, BTreeMap<String, u64>>,
    pub(super) by_source: BTreeMap<String, (u64, u64)>,
    pub(super) shapes: BTreeMap<String, u64>,
    pub(super) other_shapes: u64,
}

/// The file of an origin `file:line:column`.
pub(super) fn origin_file(origin: &str) -> &str {
    let mut parts = origin.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    match (col, line, file) {
        (Some(c), Some(l), Some(f))
            if c.bytes().all(|b| b.is_ascii_digit()) && l.bytes().all(|b| b.is_ascii_digit()) =>
        {
            f
        }
        _ => origin,
    }
}

/// `file:line` of an origin `file:line:column`.
pub(super) fn origin_line(origin: &str) -> &str {
    match origin.rsplit_once(':') {
        Some((head, col)) if !col.is_empty() && col.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => origin,
    }
}

fn number_word(n: u64) -> String {
    match n {
        1 => "one".into(),
        2 => "two".into(),
        3 => "three".into(),
        n => thousands(n),
    }
}

/// `one email at @import.invalid and two anonymous_ids` (escaped).
fn shape_text(parts: &BTreeMap<(String, Option<String>), u64>) -> String {
    parts
        .iter()
        .map(|((kind, at), n)| {
            let kind = format!("{}{}", escape(kind), if *n == 1 { "" } else { "s" });
            match at {
                Some(at) => format!("{} {kind} at {}", number_word(*n), escape(at)),
                None => format!("{} {kind}", number_word(*n)),
            }
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Reads the counts of the plan in `state`; shapes are masked by `m`.
pub(super) fn breakdown(state: &State, m: &Masker) -> anyhow::Result<Breakdown> {
    let mut b = Breakdown {
        by_type: state.counts_by_type_and_action()?,
        by_source: BTreeMap::new(),
        shapes: BTreeMap::new(),
        other_shapes: 0,
    };
    state.for_each_origin(|origin, delete| {
        let e = b
            .by_source
            .entry(origin_file(origin).to_owned())
            .or_default();
        e.0 += 1;
        e.1 += u64::from(delete);
    })?;
    let mut current: Option<String> = None;
    let mut parts: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    let flush = |parts: &mut BTreeMap<(String, Option<String>), u64>, b: &mut Breakdown| {
        if parts.is_empty() {
            return;
        }
        let text = shape_text(parts);
        parts.clear();
        if let Some(n) = b.shapes.get_mut(&text) {
            *n += 1;
        } else if b.shapes.len() < MAX_SHAPES {
            b.shapes.insert(text, 1);
        } else {
            b.other_shapes += 1;
        }
    };
    state.for_each_delete_by_profile(|profile, ident| {
        if current.as_deref() != Some(profile.as_str()) {
            flush(&mut parts, &mut b);
            current = Some(profile);
        }
        *parts
            .entry((ident.kind.clone(), m.shape(&ident)))
            .or_default() += 1;
    })?;
    flush(&mut parts, &mut b);
    Ok(b)
}
