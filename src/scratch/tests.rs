//! The planner's rules, exercised through the path `plan` runs: entries into a [`Scratch`],
//! answers recorded, drafts sealed by a [`Sealer`], items read back from the state file.

use super::*;
use crate::state::State;
use crate::state::testing::meta;

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
        Lookup::parse("anonymous_id:anon").expect("l"),
        ids(&["anonymous_id:anon", "email:z@x.com"]),
    );
    m.insert(
        Lookup::parse("user_id:g").expect("l"),
        ids(&["user_id:g", "group_id:acme"]),
    );
    m
}

/// What `plan` seals for `entries` against `world` (lookups it lacks find no profile):
/// the digest, `(action, user_id, identifier)` per item, the warnings, and how many
/// entries the scratch file collapsed as exact duplicates.
struct Sealed {
    digest: String,
    items: Vec<(Action, Option<String>, String)>,
    warnings: Vec<String>,
    duplicates: usize,
}

fn seal(entries: &[Entry], world: &BTreeMap<Lookup, Resolution>) -> Sealed {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.state.db");
    let mut scratch = Scratch::create(&path).expect("scratch file");
    let mut duplicates = 0;
    for e in entries {
        match scratch.add(e.clone()).expect("adding an entry") {
            Added::New => {}
            Added::Duplicate { .. } => duplicates += 1,
        }
    }
    // Two lookups per chunk, so the chunked read-back is exercised too.
    let mut after = None;
    loop {
        let chunk = scratch.lookups(after.as_ref(), 2).expect("lookups");
        let Some(last) = chunk.last().cloned() else {
            break;
        };
        let answers = chunk
            .into_iter()
            .map(|l| {
                let r = world.get(&l).cloned().unwrap_or(Resolution::NotFound);
                (l, r)
            })
            .collect();
        scratch.record(&answers).expect("recording");
        after = Some(last);
    }
    let mut sealer = Sealer::begin(&path, meta(), &[]).expect("begin");
    let planned = scratch.seal(&mut sealer).expect("sealing");
    let digest = sealer.finish().expect("finish");
    let state = State::open(&path).expect("open");
    let mut items = Vec::new();
    state
        .for_each_item(|i| {
            items.push((i.item.action, i.item.user_id, i.item.identifier.to_string()));
            Ok(())
        })
        .expect("items");
    assert_eq!(planned.items, items.len() as u64);
    Sealed {
        digest,
        items,
        warnings: state.warnings().expect("warnings"),
        duplicates,
    }
}

fn delete(uid: &str, ident: &str) -> (Action, Option<String>, String) {
    (Action::Delete, Some(uid.into()), ident.into())
}

fn not_sent(action: Action, ident: &str) -> (Action, Option<String>, String) {
    (action, None, ident.into())
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
        entry(Some("user_id:missing"), "email:a@x.com"), // exact duplicate: collapsed
    ];
    let sealed = seal(&entries, &world());
    assert_eq!(
        sealed.items,
        vec![
            delete("u1", "email:Bad@x.com"),
            not_sent(Action::Absent, "anonymous_id:A1"),
            not_sent(Action::Absent, "email:other@x.com"),
            not_sent(Action::Unresolved, "email:a@x.com"),
            not_sent(Action::Absent, "email:nobody@x.com"),
            not_sent(Action::Blocked, "email:z@x.com"),
            not_sent(Action::Blocked, "group_id:acme"),
        ]
    );
    assert_eq!(sealed.warnings.len(), 1, "{:?}", sealed.warnings);
    assert_eq!(sealed.duplicates, 1);
}

#[test]
fn last_user_id_is_blocked_and_address_skips_deleted_ones() {
    let entries = vec![
        entry(Some("user_id:u1"), "user_id:u1"),
        entry(Some("user_id:u1"), "user_id:u2"),
    ];
    assert_eq!(
        seal(&entries, &world()).items,
        vec![
            delete("u2", "user_id:u1"),
            not_sent(Action::Blocked, "user_id:u2"),
        ]
    );
    // Deleting one user_id of two: addressed by the other one.
    assert_eq!(
        seal(&entries[..1], &world()).items,
        vec![delete("u2", "user_id:u1")]
    );
}

#[test]
fn the_digest_is_reproducible_and_follows_every_item_field() {
    let entries = vec![
        entry(Some("user_id:u1"), "email:Bad@x.com"),
        entry(None, "email:nobody@x.com"),
    ];
    let base = seal(&entries, &world());
    assert_eq!(seal(&entries, &world()).digest, base.digest, "same inputs");

    // Another order: another `seq` for each item.
    let swapped: Vec<Entry> = entries.iter().rev().cloned().collect();
    // Another identifier.
    let mut other_id = entries.clone();
    other_id[1] = entry(None, "email:someone@x.com");
    // Another action: the profile no longer carries the email.
    let mut gone = world();
    gone.insert(
        Lookup::parse("user_id:u1").expect("l"),
        ids(&["user_id:u1", "user_id:u2"]),
    );
    // Another user_id: the profile lists u2 first, so the delete is addressed by u2.
    let mut readdressed = world();
    readdressed.insert(
        Lookup::parse("user_id:u1").expect("l"),
        ids(&["user_id:u2", "user_id:u1", "email:Bad@x.com"]),
    );
    let cases = [
        ("order", seal(&swapped, &world())),
        ("identifier", seal(&other_id, &world())),
        ("action", seal(&entries, &gone)),
        ("user_id", seal(&entries, &readdressed)),
    ];
    for (what, changed) in &cases {
        assert_ne!(changed.items, base.items, "{what}: the items differ");
        assert_ne!(
            changed.digest, base.digest,
            "{what}: the digest must change"
        );
    }
    // A profile change that leaves the items alone leaves the digest alone.
    let mut grown = world();
    grown.insert(
        Lookup::parse("user_id:u1").expect("l"),
        ids(&[
            "user_id:u1",
            "user_id:u2",
            "email:Bad@x.com",
            "email:new@x.com",
        ]),
    );
    let same = seal(&entries, &grown);
    assert_eq!(same.items, base.items);
    assert_eq!(same.digest, base.digest);
}
