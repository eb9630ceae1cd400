//! Lowercase-only lookups (`idprune emulator --lowercase-lookups`, as Segment documents: a
//! lookup "in other casing won't return any profiles"): the lookup is sent as written, the
//! item is unresolved, and the plan says why next to it.

use crate::harness::{Test, seed};

const MANIFEST: &str = r#"version: 1
space: spa_test
region: us
reason: "integration test: casing"
remove:
  - profile: external_key:ABC-1
    identifier: email:bad@x.com
  - profile: user_id:u_2
    identifier: email:bad2@x.com
  - profile: user_id:u_3
    identifier: email:bad3@x.com
"#;

fn the_seed() -> serde_json::Value {
    seed(&[
        (
            "use_1",
            &["user_id:u_1", "external_key:ABC-1", "email:bad@x.com"],
        ),
        ("use_2", &["user_id:u_2", "email:bad2@x.com"]),
        ("use_3", &["user_id:u_3", "email:bad3@x.com"]),
    ])
}

#[test]
fn lowercase_only_lookups_leave_the_item_unresolved_with_the_reason() {
    let test = Test::with_emulator(&the_seed(), &["--lowercase-lookups"]);
    test.write("m.yaml", MANIFEST);
    let out = test.idprune(["plan", "m.yaml", "--allow-unresolved"]).run();
    // `--allow-unresolved` may not exist in this build; fall back to a plain plan.
    let out = if out.code == Some(0) {
        out
    } else {
        test.idprune(["plan", "m.yaml"]).run().ok()
    };
    assert!(
        out.stderr.contains("Segment lookups are lowercase"),
        "validation warns first: {}",
        out.stderr
    );
    let show = test.show_json("m.state.db");
    assert_eq!(show["summary"]["by_action"]["unresolved"], 1, "{show}");
    assert_eq!(show["summary"]["by_action"]["delete"], 2, "{show}");
    let text = test.idprune(["show", "m.state.db"]).run().ok();
    assert!(
        text.stdout
            .contains("finds no profile for a lookup in other casing"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("sent as written"), "{}", text.stdout);

    // Without the flag, the emulator matches exactly and the same lookup resolves.
    let test = Test::new(&the_seed());
    test.write("m.yaml", MANIFEST);
    test.idprune(["plan", "m.yaml"]).run().ok();
    let show = test.show_json("m.state.db");
    assert_eq!(show["summary"]["by_action"]["delete"], 3, "{show}");
}
