//! Benchmark of the markdown view: seals a plan of N items (default 100,000) into a state file,
//! renders it as the pull-request markdown, and prints the time taken and the size, against
//! GitHub's 65,536-character comment limit. A benchmark, not a test: it prints figures.
//!
//! `cargo run --release --example markdown_bench [-- ITEMS]`

use std::time::Instant;

use idprune::markdown::{self, GITHUB_LIMIT};
use idprune::mask::{Masker, RedactLevel};
use idprune::model::Identifier;
use idprune::plan::{Action, Item, Profile};
use idprune::render::PlanView;
use idprune::state::{Meta, Sealer, State};

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.state.db");
    let meta = Meta {
        format_version: idprune::state::FORMAT_VERSION,
        digest: String::new(),
        space: "spa_bench".into(),
        region: "us".into(),
        api_origin: "https://profiles.segment.com:443".into(),
        manifest_path: "bench.yaml".into(),
        manifest_sha256: "00".repeat(32),
        reason: "benchmark: a large plan (OPS-0)".into(),
        created_at: idprune::state::now_unix(),
        ttl_secs: 7 * 24 * 3600,
        policy_sha256: None,
    };
    let started = Instant::now();
    let mut sealer = Sealer::begin(&path, meta, &[])?;
    for seq in 1..=n {
        // Nine in ten items delete a placeholder email, one in ten finds nothing to delete;
        // every fifth profile also loses an anonymous_id (two items on one profile).
        let profile = format!("user_id:u_{seq:08}");
        let (kind, id) = if seq % 5 == 0 {
            ("anonymous_id", format!("anon-{seq}"))
        } else {
            (
                "email",
                format!("placeholder-{seq}@import{}.invalid", seq % 3),
            )
        };
        let action = if seq % 10 == 7 {
            Action::Absent
        } else {
            Action::Delete
        };
        let identifier = Identifier::new(kind, id);
        let uid = format!("u_{seq:08}");
        sealer.profile(&Profile {
            key: profile.clone(),
            lookup: format!("user_id:{uid}"),
            before: vec![Identifier::new("user_id", uid.clone()), identifier.clone()],
        })?;
        sealer.item(&Item {
            seq,
            lookup: format!("user_id:{uid}"),
            profile: Some(profile),
            user_id: Some(uid),
            identifier,
            action,
            note: None,
            origin: format!("bench.csv:{}:1", seq + 1),
        })?;
    }
    sealer.finish()?;
    let sealed = started.elapsed();
    let state = State::open(&path)?;
    let view = PlanView::new(&state)?;
    let masker = Masker::new(Some(RedactLevel::Preview), b"bench key".to_vec());
    let mut out = Vec::new();
    let started = Instant::now();
    markdown::plan(&view, &masker, "plans/bench.state.db", &mut out)?;
    let rendered = started.elapsed();
    let text = String::from_utf8(out)?;
    let chars = text.chars().count();
    println!(
        "markdown of a {n}-item plan: {chars} characters ({} bytes, GitHub limit {GITHUB_LIMIT}: {}) in {:.3} s (sealing took {:.1} s)",
        text.len(),
        if chars <= GITHUB_LIMIT {
            "under"
        } else {
            "OVER"
        },
        rendered.as_secs_f64(),
        sealed.as_secs_f64()
    );
    Ok(())
}
