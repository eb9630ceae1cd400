//! `plan --refresh=false`: entries that name their profile by `user_id` and remove another
//! type are planned without a read, as unverified deletes; everything else is still read; the
//! digest says which items are unverified; apply ends an absent one `already_absent`.

use crate::harness::{Test, seed};

const MANIFEST: &str = "version: 1
space: spa_test
region: us
reason: refresh test
remove:
  - profile: user_id:u_1
    identifier: email:bad-1@x.com
  - profile: user_id:u_2
    identifier: email:bad-2@x.com
  - profile: user_id:u_2
    identifier: email:never-there@x.com
  - profile: user_id:u_3
    identifier: user_id:u_3-extra
  - identifier: email:bad-4@x.com
";

fn refresh_test() -> Test {
    let test = Test::new(&seed(&[
        ("use_1", &["user_id:u_1", "email:bad-1@x.com"]),
        ("use_2", &["user_id:u_2", "email:bad-2@x.com"]),
        ("use_3", &["user_id:u_3", "user_id:u_3-extra"]),
        ("use_4", &["user_id:u_4", "email:bad-4@x.com"]),
    ]));
    test.write("m.yaml", MANIFEST);
    test
}

fn reads(test: &Test) -> u64 {
    let stats = test.emu().stats();
    stats.requests - stats.deletes
}

#[test]
fn refresh_false_reads_only_what_an_entry_needs_and_marks_the_rest_unverified() {
    let test = refresh_test();
    let read = test.plan("m.yaml", "read.state.db");
    let reads_with_refresh = reads(&test);
    assert_eq!(reads_with_refresh, 4, "every lookup is read by default");

    test.idprune(["plan", "m.yaml", "-o", "skip.state.db", "--refresh=false"])
        .run()
        .ok();
    let skipped = test.digest("skip.state.db");
    // The user_id removal (its guard rail needs the profile) and the identifier lookup.
    assert_eq!(reads(&test) - reads_with_refresh, 2);
    assert_ne!(read, skipped, "unverified items are in the digest");
    // Without the flag nothing changes: the same digest as before.
    assert_eq!(test.plan("m.yaml", "again.state.db"), read);

    let unverified = test.items_where("skip.state.db", "note LIKE 'unverified:%'");
    assert_eq!(unverified.len(), 3, "{unverified:?}");
    let text = test.idprune(["show", "skip.state.db"]).run().ok().stdout;
    // Said once, with the count, not once a line.
    assert_eq!(
        text.matches("3 deletions are unverified: planned without reading")
            .count(),
        1,
        "{text}"
    );
    let json = test.show_json("skip.state.db");
    assert_eq!(json.to_string().matches("unverified: planned").count(), 3);

    test.idprune(["apply", "skip.state.db", "--approve", &skipped])
        .run()
        .ok();
    let states = test.item_states("skip.state.db");
    assert_eq!(states.get("done"), Some(&4), "{states:?}");
    assert_eq!(states.get("already_absent"), Some(&1), "{states:?}");
}

#[test]
fn an_edited_unverified_mark_breaks_the_seal() {
    let test = refresh_test();
    test.idprune(["plan", "m.yaml", "--refresh=false"])
        .run()
        .ok();
    let digest = test.digest("m.state.db");
    test.edit_db("m.state.db")
        .execute(
            "UPDATE items SET note = NULL WHERE note LIKE 'unverified:%' AND seq = 1",
            [],
        )
        .expect("editing a note");
    let out = test
        .idprune(["apply", "m.state.db", "--approve", &digest])
        .run()
        .code(4);
    assert!(
        out.stderr.contains("changed after it was sealed"),
        "{}",
        out.stderr
    );
    assert_eq!(test.emu().stats().deletes, 0);
}
