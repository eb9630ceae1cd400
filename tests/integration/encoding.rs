//! Values that a careless path encoder would mangle reach the right profile, and only it.

use std::collections::BTreeSet;

use crate::harness::{Deleted, Test, seed, seed_profiles, without};

/// `user_id`s (and identifier values) whose path encoding is easy to get wrong.
const AWKWARD: &[&str] = &[
    "ops+team/42 ü",
    "a%2Fb",
    "x?y#z",
    "..",
    ".",
    "c:d",
    "semi;colon&amp=1",
    "日本/語",
];

/// What each awkward value turns into under a common mistake, seeded as its own profile so a
/// mis-addressed request would land there (and be seen).
const DECOYS: &[&str] = &[
    "ops team/42 ü", // `+` decoded as a space
    "ops",           // path cut at `/`... (also `+`)
    "a/b",           // `%2F` decoded once too often
    "x",             // query or fragment split off
    "c",
    "semi",
];

#[test]
fn awkward_values_are_deleted_on_the_right_profile_and_nowhere_else() {
    let mut profiles: Vec<(String, Vec<String>)> = Vec::new();
    for (n, v) in AWKWARD.iter().enumerate() {
        profiles.push((
            format!("use_w{n}"),
            vec![format!("user_id:{v}"), format!("email:e-{n}@x.com")],
        ));
    }
    for (n, d) in DECOYS.iter().enumerate() {
        profiles.push((
            format!("use_d{n}"),
            vec![format!("user_id:{d}"), format!("email:decoy-{n}@x.com")],
        ));
    }
    // Awkward values as identifiers too: in identifier-only lookups (path) and the body.
    let mut anon = vec!["user_id:holder".to_owned()];
    anon.extend(AWKWARD.iter().map(|v| format!("anonymous_id:{v}")));
    profiles.push(("use_holder".into(), anon));
    let seed_profiles_ref: Vec<(&str, Vec<&str>)> = profiles
        .iter()
        .map(|(s, ids)| (s.as_str(), ids.iter().map(String::as_str).collect()))
        .collect();
    let seeded: Vec<(&str, &[&str])> = seed_profiles_ref
        .iter()
        .map(|(s, ids)| (*s, ids.as_slice()))
        .collect();
    let seed = seed(&seeded);
    let test = Test::new(&seed);

    let mut manifest =
        String::from("version: 1\nspace: spa_test\nregion: us\nreason: awkward values\nremove:\n");
    let mut expected = BTreeSet::new();
    for (n, v) in AWKWARD.iter().enumerate() {
        let quoted = serde_json::to_string(&format!("user_id:{v}")).expect("JSON string");
        manifest.push_str(&format!(
            "  - profile: {quoted}\n    identifier: email:e-{n}@x.com\n"
        ));
        expected.insert(Deleted::new(v, "email", &format!("e-{n}@x.com")));
        let quoted = serde_json::to_string(&format!("anonymous_id:{v}")).expect("JSON string");
        manifest.push_str(&format!("  - identifier: {quoted}\n"));
        expected.insert(Deleted::new("holder", "anonymous_id", v));
    }
    test.write("m.yaml", &manifest);

    test.idprune(["plan", "m.yaml", "--detailed-exitcode"])
        .run()
        .code(2);
    // Each lookup resolved to its own profile: a decoy would have made the item `absent`.
    assert_eq!(test.planned_deletes("m.state.db"), expected);

    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    let stats = test.emu().stats();
    assert_eq!(stats.deleted_set(), expected);
    assert_eq!(
        stats.deletes as usize,
        expected.len(),
        "no request went astray"
    );
    assert_eq!(
        test.emu().profiles(),
        without(seed_profiles(&seed), &expected)
    );
    let states = test.item_states("m.state.db");
    assert_eq!(
        states.get("done").copied(),
        Some(expected.len() as u64),
        "{states:?}"
    );
}

#[test]
fn csv_with_bom_crlf_and_quoted_fields() {
    let seed = seed(&[
        (
            "use_1",
            &["user_id:u_1", "email:a@x.com", "email:keep@x.com"],
        ),
        ("use_2", &["user_id:u_2", "email:weird,\"quoted\"@x.com"]),
        ("use_3", &["user_id:u 3", "email:c@x.com"]),
    ]);
    let test = Test::new(&seed);
    test.write(
        "m.yaml",
        "version: 1\nspace: spa_test\nregion: us\nreason: csv dialects\nsources:\n  - csv: s.csv\n    profile_column: user_id\n    remove_columns: [email]\n",
    );
    test.write(
        "s.csv",
        "\u{feff}user_id,email\r\nu_1,a@x.com\r\n\"u_2\",\"weird,\"\"quoted\"\"@x.com\"\r\n\"u 3\",c@x.com\r\n",
    );
    test.idprune(["plan", "m.yaml", "--detailed-exitcode"])
        .run()
        .code(2);
    let expected: BTreeSet<Deleted> = [
        Deleted::new("u_1", "email", "a@x.com"),
        Deleted::new("u_2", "email", "weird,\"quoted\"@x.com"),
        Deleted::new("u 3", "email", "c@x.com"),
    ]
    .into();
    assert_eq!(test.planned_deletes("m.state.db"), expected);
    test.idprune(["apply", "m.state.db", "--yes"]).run().ok();
    assert_eq!(test.emu().stats().deleted_set(), expected);
    assert_eq!(
        test.emu().profiles(),
        without(seed_profiles(&seed), &expected)
    );
}
