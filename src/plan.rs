//! The planner: a pure function from manifest entries and resolved profiles to plan items
//! (docs/ARCHITECTURE.md, *The pipeline*). No clock, no network, no hash-map iteration order: the
//! same inputs give the same plan, item for item, so the digest is reproducible.
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

/// The item of an entry whose lookup found no profile. `seq` is set later, when the scratch file
/// numbers the drafts in manifest order.
pub fn plan_unresolved(entry: &Entry) -> Item {
    let mut item = Item {
        seq: 0,
        lookup: lookup_of(entry).to_string(),
        profile: None,
        user_id: None,
        identifier: entry.identifier.clone(),
        action: Action::Unresolved,
        note: Some(format!(
            "no profile answers to the lookup{NEXT}{UNRESOLVED_NEXT}"
        )),
        origin: entry.origin.to_string(),
    };
    if entry.lookup.is_none() {
        item.action = Action::Absent;
        item.note = Some(format!("no profile carries it{NEXT}{ABSENT_NEXT}"));
    }
    if lookup_has_upper_case(entry) {
        let reason = if entry.lookup.is_none() {
            "no profile carries it"
        } else {
            "no profile answers to the lookup"
        };
        item.note = Some(format!(
            "{reason}; the lookup has upper-case characters and Segment's Profile API finds no profile for a lookup in other casing than the stored lower case. It was sent as written (idprune never rewrites a value){NEXT}if the profile stores it in lower case, write it so in the manifest and plan again"
        ));
    }
    item
}

/// What separates an item's reason from its next step in its note: every item that is not
/// sent says why, then what can be done (`reason; next: step`). The views show the note whole,
/// and the markdown view in two columns ([`split_note`]).
pub const NEXT: &str = "; next: ";

/// The next step of an unresolved item.
const UNRESOLVED_NEXT: &str = "check the lookup's type and value (Segment stores lookups in lower case), the manifest's space and region; drop the entry if the profile is gone";
/// The next step of an absent item.
const ABSENT_NEXT: &str =
    "nothing to send (already gone); check the value if you expected it there";

/// An item's note as `(reason, next step)`.
pub fn split_note(note: &str) -> (&str, Option<&str>) {
    match note.split_once(NEXT) {
        Some((reason, next)) => (reason, Some(next)),
        None => (note, None),
    }
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

/// True when the lookup an entry is resolved by holds an upper-case character.
fn lookup_has_upper_case(entry: &Entry) -> bool {
    match &entry.lookup {
        Some(crate::model::Lookup::External(id)) => id.id.chars().any(char::is_uppercase),
        Some(_) => false,
        None => entry.identifier.id.chars().any(char::is_uppercase),
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
                item.note = Some(format!(
                    "only a value differing in case is stored; not matched (exact match for non-email types){NEXT}write the value exactly as the profile stores it, if that is the one to remove, and plan again"
                ));
                out.items.push((*idx, item));
                continue;
            }
            Match::None => {
                item.action = Action::Absent;
                item.note = Some(format!("the profile does not carry it{NEXT}{ABSENT_NEXT}"));
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
            item.note = Some(format!(
                "group_id identifiers cannot be deleted{NEXT}remove the entry from the manifest; Segment's API offers no deletion of a group_id"
            ));
        } else if !ids.iter().any(Identifier::is_user_id) {
            item.action = Action::Blocked;
            item.note = Some(format!(
                "the profile has no user_id, and the API addresses profiles only by user_id{NEXT}give the profile a user_id (an identify call with a userId and one of its identifiers), then plan again; or remove the entry"
            ));
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
        item.note = Some(format!(
            "the last user_id of the profile; Segment requires at least one{NEXT}keep it, or add the user_id that should replace it first (an identify call), then plan again"
        ));
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
