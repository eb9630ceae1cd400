//! The planner: a pure function from manifest entries and resolved profiles to plan items
//! (DESIGN.md §5). No clock, no network, no hash-map iteration order: the same inputs give the
//! same plan, item for item, so the digest is reproducible.
//!
//! Decisions recorded here:
//! - An identifier-only entry whose lookup finds no profile is `absent` ("no profile carries
//!   it"), not `unresolved`: the identifier is demonstrably on no profile, and a re-plan after a
//!   successful apply then reads "no changes" instead of a wall of unresolved items.
//! - Notes never hold identifier values, so redacted output can show them as they are.
//! - A profile's key is its smallest identifier (`type:id`): every identifier belongs to exactly
//!   one profile, so two lookups that reach the same profile get the same key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::manifest::Entry;
use crate::model::{GROUP_ID, Identifier, Lookup, USER_ID};

/// What the plan will do with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// The identifier is on the profile and will be deleted.
    Delete,
    /// The profile does not carry it; nothing is sent.
    Absent,
    /// A guard rail forbids the deletion; nothing is sent.
    Blocked,
    /// No profile answers to the lookup; nothing is sent.
    Unresolved,
}

impl Action {
    /// All actions, in display order.
    pub const ALL: [Action; 4] = [Self::Delete, Self::Absent, Self::Blocked, Self::Unresolved];

    /// The name used in the state file, the digest and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Absent => "absent",
            Self::Blocked => "blocked",
            Self::Unresolved => "unresolved",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown action `{s}`"))
    }
}

/// One planned item: one identifier of one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// 1-based position in the plan.
    pub seq: u64,
    /// The lookup the entry used, as `TYPE:VALUE` or a segment id.
    pub lookup: String,
    /// The key of the resolved profile, when one was found.
    pub profile: Option<String>,
    /// The `user_id` the delete request addresses (only for `delete` items).
    pub user_id: Option<String>,
    /// The identifier, exactly as the profile stores it when found, else as written.
    pub identifier: Identifier,
    /// What happens to it.
    pub action: Action,
    /// Why, for the reviewer; never holds identifier values.
    pub note: Option<String>,
    /// Where the entry came from (`file:line:column`).
    pub origin: String,
}

/// A resolved profile's identifiers before the plan, for the diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The profile key (its smallest identifier).
    pub key: String,
    /// The first lookup that reached it.
    pub lookup: String,
    /// Its identifiers, in the API's order.
    pub before: Vec<Identifier>,
}

/// What a lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The profile's identifiers, in the API's order.
    Found(Vec<Identifier>),
    /// 404: no profile.
    NotFound,
}

/// The plan: items in `seq` order, touched profiles by key, and warnings for the reviewer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Items in `seq` order.
    pub items: Vec<Item>,
    /// Profiles any item resolved to, by key.
    pub profiles: BTreeMap<String, Profile>,
    /// Collapsed duplicates and similar remarks.
    pub warnings: Vec<String>,
}

/// Counts of a plan by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Items to delete.
    pub delete: u64,
    /// Distinct profiles with something to delete.
    pub delete_profiles: u64,
    /// Items already absent.
    pub absent: u64,
    /// Items a guard rail blocks.
    pub blocked: u64,
    /// Items whose lookup found no profile.
    pub unresolved: u64,
}

impl Summary {
    /// Counts one item.
    pub fn add(&mut self, action: Action) {
        match action {
            Action::Delete => self.delete += 1,
            Action::Absent => self.absent += 1,
            Action::Blocked => self.blocked += 1,
            Action::Unresolved => self.unresolved += 1,
        }
    }

    /// The count for one action.
    pub fn count(&self, action: Action) -> u64 {
        match action {
            Action::Delete => self.delete,
            Action::Absent => self.absent,
            Action::Blocked => self.blocked,
            Action::Unresolved => self.unresolved,
        }
    }
}

impl Plan {
    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let mut profiles = BTreeSet::new();
        for item in &self.items {
            s.add(item.action);
            if item.action == Action::Delete {
                profiles.insert(item.profile.as_deref());
            }
        }
        s.delete_profiles = profiles.len() as u64;
        s
    }
}

/// The lookup an entry resolves through: its profile, or the identifier itself.
pub fn lookup_of(entry: &Entry) -> Lookup {
    entry
        .lookup
        .clone()
        .unwrap_or_else(|| Lookup::External(entry.identifier.clone()))
}

/// The key of a profile: its smallest identifier.
pub fn profile_key(ids: &[Identifier]) -> Option<String> {
    ids.iter().min().map(ToString::to_string)
}

/// How an entry's identifier matched a profile's identifiers.
enum Match {
    Exact(Identifier),
    EmailCase(Identifier),
    OtherCase,
    None,
}

fn find(ids: &[Identifier], wanted: &Identifier) -> Match {
    if ids.contains(wanted) {
        return Match::Exact(wanted.clone());
    }
    let near = ids
        .iter()
        .find(|i| i.kind == wanted.kind && i.id.eq_ignore_ascii_case(&wanted.id));
    match near {
        Some(i) if i.kind == "email" => Match::EmailCase(i.clone()),
        Some(_) => Match::OtherCase,
        None => Match::None,
    }
}

/// The item of an entry whose lookup found no profile. `seq` is set later by [`number`].
pub fn plan_unresolved(entry: &Entry) -> Item {
    let mut item = Item {
        seq: 0,
        lookup: lookup_of(entry).to_string(),
        profile: None,
        user_id: None,
        identifier: entry.identifier.clone(),
        action: Action::Unresolved,
        note: Some("no profile answers to the lookup".into()),
        origin: entry.origin.to_string(),
    };
    if entry.lookup.is_none() {
        item.action = Action::Absent;
        item.note = Some("no profile carries it".into());
    }
    item
}

/// The note of an item planned without reading its profile (`plan --refresh=false`). The
/// note is what marks the item unverified: it is shown in every view, and the digest encodes
/// it (see [`crate::digest`]), so editing it in the state file invalidates the seal.
pub const UNVERIFIED_NOTE: &str = "unverified: planned without reading the profile (--refresh=false); sent as written, an absent identifier ends already_absent";

/// True when `entry` can be addressed without a read: it names its profile by `user_id` and
/// removes an identifier no guard rail needs the profile for (not a `user_id`, whose
/// last-user_id rule needs the profile, nor a `group_id`).
pub fn needs_no_read(entry: &Entry) -> bool {
    matches!(&entry.lookup, Some(Lookup::External(l)) if l.kind == USER_ID)
        && !matches!(entry.identifier.kind.as_str(), USER_ID | GROUP_ID)
}

/// Plans an entry [`needs_no_read`] accepts, without its profile: `delete`, addressed by the
/// lookup's `user_id`, the identifier as written, marked [`UNVERIFIED_NOTE`].
pub fn plan_unverified(entry: &Entry) -> Item {
    let lookup = lookup_of(entry);
    let user_id = match &lookup {
        Lookup::External(l) => Some(l.id.clone()),
        Lookup::SegmentId(_) => None,
    };
    Item {
        seq: 0,
        lookup: lookup.to_string(),
        // Unread, so no profile key and no before-state (apply keys its per-profile limit by
        // the user_id instead).
        profile: None,
        user_id,
        identifier: entry.identifier.clone(),
        action: Action::Delete,
        note: Some(UNVERIFIED_NOTE.into()),
        origin: entry.origin.to_string(),
    }
}

impl Item {
    /// True for a `delete` planned without reading the profile (`plan --refresh=false`).
    pub fn is_unverified(&self) -> bool {
        self.action == Action::Delete && self.note.as_deref() == Some(UNVERIFIED_NOTE)
    }
}

/// One profile's share of the plan: its entries' items (keyed by the entries' manifest
/// positions, `seq` not yet set), the warnings about collapsed duplicates (keyed likewise), and
/// the profile's before-state for the diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfilePlan {
    /// `(manifest position, item)`.
    pub items: Vec<(u64, Item)>,
    /// `(manifest position, warning)`.
    pub warnings: Vec<(u64, String)>,
    /// The profile.
    pub profile: Option<Profile>,
}

/// Plans every entry that resolved to one profile. `entries` are `(manifest position, entry)`
/// in manifest order; `ids` are the profile's identifiers in the API's order. Everything the
/// guard rails need is local to the profile, which is what lets `plan` stream millions of
/// entries profile by profile.
pub fn plan_profile(entries: &[(u64, Entry)], ids: &[Identifier]) -> ProfilePlan {
    let mut out = ProfilePlan::default();
    let Some((_, first)) = entries.first() else {
        return out;
    };
    let key = profile_key(ids).unwrap_or_else(|| lookup_of(first).to_string());
    out.profile = Some(Profile {
        key: key.clone(),
        lookup: lookup_of(first).to_string(),
        before: ids.to_vec(),
    });
    // Stored identifier → the origin of the entry that claimed it first.
    let mut claimed: BTreeMap<Identifier, String> = BTreeMap::new();
    for (idx, entry) in entries {
        let mut item = plan_unresolved(entry);
        item.profile = Some(key.clone());
        item.note = None;
        let stored = match find(ids, &entry.identifier) {
            Match::Exact(i) => i,
            Match::EmailCase(i) => {
                item.note = Some("matched the stored email, which differs only in case".into());
                i
            }
            Match::OtherCase => {
                item.action = Action::Absent;
                item.note = Some(
                    "only a value differing in case is stored; not matched (exact match for non-email types)"
                        .into(),
                );
                out.items.push((*idx, item));
                continue;
            }
            Match::None => {
                item.action = Action::Absent;
                out.items.push((*idx, item));
                continue;
            }
        };
        if let Some(first) = claimed.get(&stored) {
            out.warnings.push((
                *idx,
                format!(
                    "{}: same profile and identifier as the entry at {first}; collapsed",
                    entry.origin
                ),
            ));
            continue;
        }
        claimed.insert(stored.clone(), item.origin.clone());
        item.identifier = stored;
        if item.identifier.kind == GROUP_ID {
            item.action = Action::Blocked;
            item.note = Some("group_id identifiers cannot be deleted".into());
        } else if !ids.iter().any(Identifier::is_user_id) {
            item.action = Action::Blocked;
            item.note = Some(
                "the profile has no user_id, and the API addresses profiles only by user_id".into(),
            );
        } else {
            item.action = Action::Delete;
        }
        out.items.push((*idx, item));
    }
    guard_last_user_id(&mut out.items, ids);
    address(&mut out.items, ids);
    out
}

/// Blocks the last (in manifest order) of the user_id deletions that would empty the profile.
fn guard_last_user_id(items: &mut [(u64, Item)], ids: &[Identifier]) {
    let total = ids.iter().filter(|i| i.is_user_id()).count();
    let deleting: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, (_, i))| i.action == Action::Delete && i.identifier.is_user_id())
        .map(|(n, _)| n)
        .collect();
    if let Some(&last) = deleting.last().filter(|_| deleting.len() >= total) {
        let item = &mut items[last].1;
        item.action = Action::Blocked;
        item.note = Some("the last user_id of the profile; Segment requires at least one".into());
    }
}

/// Sets each delete's address: the profile's first user_id (API order) the plan keeps.
fn address(items: &mut [(u64, Item)], ids: &[Identifier]) {
    let gone: BTreeSet<&Identifier> = items
        .iter()
        .filter(|(_, i)| i.action == Action::Delete)
        .map(|(_, i)| &i.identifier)
        .collect();
    let keep = ids
        .iter()
        .find(|i| i.is_user_id() && !gone.contains(i))
        .map(|i| i.id.clone());
    for (_, item) in items.iter_mut().filter(|(_, i)| i.action == Action::Delete) {
        item.user_id = keep.clone();
    }
}

/// Sets `seq` 1, 2, ... in manifest order. `items` must be sorted by manifest position.
pub fn number(items: impl IntoIterator<Item = (u64, Item)>) -> impl Iterator<Item = Item> {
    items.into_iter().zip(1u64..).map(|((_, mut item), seq)| {
        item.seq = seq;
        item
    })
}

/// A profile's entries (with their manifest positions) and its identifiers.
type Group<'a> = (Vec<(u64, Entry)>, &'a [Identifier]);

/// Builds the whole plan in memory. `resolved` must hold an answer for every entry's
/// [`lookup_of`]. `plan` streams the same steps through SQLite for large manifests.
pub fn build(entries: &[Entry], resolved: &BTreeMap<Lookup, Resolution>) -> Plan {
    let mut drafts: Vec<(u64, Item)> = Vec::new();
    let mut warnings: Vec<(u64, String)> = Vec::new();
    let mut groups: BTreeMap<String, Group<'_>> = BTreeMap::new();
    for (idx, entry) in (0u64..).zip(entries) {
        match resolved.get(&lookup_of(entry)) {
            Some(Resolution::Found(ids)) => {
                let key = profile_key(ids).unwrap_or_else(|| lookup_of(entry).to_string());
                groups
                    .entry(key)
                    .or_insert_with(|| (Vec::new(), ids))
                    .0
                    .push((idx, entry.clone()));
            }
            _ => drafts.push((idx, plan_unresolved(entry))),
        }
    }
    let mut plan = Plan::default();
    for (group, ids) in groups.into_values() {
        let part = plan_profile(&group, ids);
        drafts.extend(part.items);
        warnings.extend(part.warnings);
        if let Some(p) = part.profile {
            plan.profiles.insert(p.key.clone(), p);
        }
    }
    drafts.sort_by_key(|(idx, _)| *idx);
    warnings.sort();
    plan.items = number(drafts).collect();
    plan.warnings = warnings.into_iter().map(|(_, w)| w).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Location;

    fn entry(lookup: Option<&str>, ident: &str) -> Entry {
        Entry {
            lookup: lookup.map(|l| Lookup::parse(l).expect("lookup")),
            identifier: Identifier::parse(ident).expect("identifier"),
            origin: Location {
                file: "m.yaml".into(),
                line: 1,
                column: 1,
            },
        }
    }

    fn ids(list: &[&str]) -> Resolution {
        Resolution::Found(
            list.iter()
                .map(|s| Identifier::parse(s).expect("id"))
                .collect(),
        )
    }

    fn world() -> BTreeMap<Lookup, Resolution> {
        let mut m = BTreeMap::new();
        let p1 = ids(&[
            "user_id:u1",
            "user_id:u2",
            "email:Bad@x.com",
            "anonymous_id:a1",
        ]);
        m.insert(Lookup::parse("user_id:u1").expect("l"), p1.clone());
        m.insert(Lookup::parse("user_id:u2").expect("l"), p1);
        m.insert(
            Lookup::parse("user_id:missing").expect("l"),
            Resolution::NotFound,
        );
        m.insert(
            Lookup::parse("email:nobody@x.com").expect("l"),
            Resolution::NotFound,
        );
        m.insert(
            Lookup::parse("anonymous_id:anon").expect("l"),
            ids(&["anonymous_id:anon", "email:z@x.com"]),
        );
        m.insert(
            Lookup::parse("user_id:g").expect("l"),
            ids(&["user_id:g", "group_id:acme"]),
        );
        m
    }

    fn actions(plan: &Plan) -> Vec<(Action, Option<&str>, String)> {
        plan.items
            .iter()
            .map(|i| (i.action, i.user_id.as_deref(), i.identifier.to_string()))
            .collect()
    }

    #[test]
    fn classifies_every_kind_of_entry() {
        let entries = vec![
            entry(Some("user_id:u1"), "email:bad@x.com"), // email case match
            entry(Some("user_id:u1"), "anonymous_id:A1"), // other-type case: absent
            entry(Some("user_id:u1"), "email:other@x.com"), // absent
            entry(Some("user_id:missing"), "email:a@x.com"), // unresolved
            entry(None, "email:nobody@x.com"),            // identifier-only, nowhere: absent
            entry(Some("anonymous_id:anon"), "email:z@x.com"), // no user_id: blocked
            entry(Some("user_id:g"), "group_id:acme"),    // group_id: blocked
            entry(Some("user_id:u2"), "email:Bad@x.com"), // same profile+identifier: collapsed
        ];
        let plan = build(&entries, &world());
        assert_eq!(
            actions(&plan),
            vec![
                (Action::Delete, Some("u1"), "email:Bad@x.com".into()),
                (Action::Absent, None, "anonymous_id:A1".into()),
                (Action::Absent, None, "email:other@x.com".into()),
                (Action::Unresolved, None, "email:a@x.com".into()),
                (Action::Absent, None, "email:nobody@x.com".into()),
                (Action::Blocked, None, "email:z@x.com".into()),
                (Action::Blocked, None, "group_id:acme".into()),
            ]
        );
        assert_eq!(plan.warnings.len(), 1);
        let s = plan.summary();
        assert_eq!(
            (
                s.delete,
                s.delete_profiles,
                s.absent,
                s.blocked,
                s.unresolved
            ),
            (1, 1, 3, 2, 1)
        );
    }

    #[test]
    fn last_user_id_is_blocked_and_address_skips_deleted_ones() {
        let entries = vec![
            entry(Some("user_id:u1"), "user_id:u1"),
            entry(Some("user_id:u1"), "user_id:u2"),
        ];
        let plan = build(&entries, &world());
        assert_eq!(
            actions(&plan),
            vec![
                (Action::Delete, Some("u2"), "user_id:u1".into()),
                (Action::Blocked, None, "user_id:u2".into()),
            ]
        );
        // Deleting one user_id of two: addressed by the other one.
        let plan = build(&entries[..1], &world());
        assert_eq!(
            actions(&plan),
            vec![(Action::Delete, Some("u2"), "user_id:u1".into())]
        );
    }

    #[test]
    fn plans_are_deterministic() {
        let entries = vec![
            entry(Some("user_id:u1"), "email:Bad@x.com"),
            entry(None, "email:nobody@x.com"),
        ];
        assert_eq!(build(&entries, &world()), build(&entries, &world()));
    }
}
