//! Property tests (STYLE.md rule 8), against the library in-process:
//!
//! - the lookup path segment round-trips through the real emulator for arbitrary Unicode
//!   `user_id`s (read by `user_id:V`, then a delete addressed by it);
//! - the digest covers exactly the plan: permuting a manifest's entries leaves it unchanged
//!   when, and only when, the sealed items are unchanged. "Same plan" means the same sequence
//!   of `(seq, user_id, type, id, action)`: `seq` follows manifest order and the reviewer
//!   approves that sequence, so a permutation that moves two different items changes the
//!   digest, and one that only swaps entries yielding identical items (or origins, notes) does
//!   not. The state file's own recomputation agrees;
//! - plan → apply → crash anywhere → resume ends in the same profiles as an uninterrupted run,
//!   with an in-memory fake of `segment::ProfileApi`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idprune::apply::{ApplyOptions, execute};
use idprune::digest::{Header, ItemFields, PlanHasher};
use idprune::manifest::{Entry, Location};
use idprune::model::{Identifier, Lookup};
use idprune::plan::{Plan, Resolution};
use idprune::segment::{DeleteOutcome, Fault, ProfileApi, ReadPage, Reply};
use idprune::state::{self, Meta, Seal, State};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

// ---------------------------------------------------------------- path round trip

/// Any non-empty string of up to 24 chars, biased towards the characters URLs treat specially.
fn user_id() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        "+", "/", "?", "#", "%", "%2B", " ", ":", ".", "..", "&", "=", ";", "\\", "é", "ß", "日本",
        "👍🏽", "\u{202e}", "\u{feff}", "\u{0}", "\n", "%00", "~", "@",
    ])
    .prop_map(str::to_owned);
    prop::collection::vec(
        prop_oneof![any::<char>().prop_map(String::from), special],
        1..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn user_id_path_segments_round_trip_through_the_emulator(
        ids in prop::collection::btree_set(user_id(), 1..6)
    ) {
        let rt = runtime();
        rt.block_on(async {
            let profiles: Vec<serde_json::Value> = ids
                .iter()
                .enumerate()
                .map(|(n, id)| serde_json::json!({
                    "segment_id": format!("use_{n}"),
                    "identifiers": [
                        {"type": "user_id", "id": id},
                        {"type": "email", "id": format!("e{n}@x.com")},
                    ],
                }))
                .collect();
            let seed = idprune::emulator::Seed::from_json(
                &serde_json::json!({"space": "spa_p", "token": "t", "profiles": profiles})
                    .to_string(),
            )
            .expect("a valid seed");
            let config = idprune::emulator::Config {
                space_rate: 0,
                profile_rate: 0,
                ..idprune::emulator::Config::default()
            };
            let emulator = idprune::emulator::Emulator::start(config, seed)
                .await
                .expect("starting the emulator");
            let client = idprune::segment::Client::new(idprune::segment::ClientOptions {
                base_url: emulator.base_url().parse().expect("a URL"),
                space: "spa_p".into(),
                token: "t".to_owned().into(),
                pacer: Arc::new(idprune::pace::Pacer::new(0)),
                timeout: Duration::from_secs(10),
                max_idle: 4,
            })
            .expect("building the client");
            for (n, id) in ids.iter().enumerate() {
                let lookup = Lookup::External(Identifier::new("user_id", id.as_str()));
                let page = client.external_ids_page(&lookup, None).await;
                let email = Identifier::new("email", format!("e{n}@x.com"));
                match page.result {
                    Ok(ReadPage::Found { ids: found, .. }) => {
                        assert!(
                            found.contains(&Identifier::new("user_id", id.as_str()))
                                && found.contains(&email),
                            "user_id {id:?} read another profile: {found:?}"
                        );
                    }
                    other => panic!("user_id {id:?} did not resolve: {other:?}"),
                }
                let deleted = client.delete(id, &email).await;
                assert_eq!(deleted.result, Ok(DeleteOutcome::Deleted), "user_id {id:?}");
                let again = client.delete(id, &email).await;
                assert_eq!(
                    again.result,
                    Ok(DeleteOutcome::IdentifierNotFound),
                    "user_id {id:?}: the delete reached another profile"
                );
            }
            emulator.shutdown().await;
        });
    }
}

// ---------------------------------------------------------------- digest

/// A small world: profiles `p0..p5`, each with user_ids and emails drawn from small pools so
/// that entries collide, repeat and remove last user_ids.
#[derive(Clone, Debug)]
struct World {
    profiles: Vec<Vec<Identifier>>,
    entries: Vec<Entry>,
}

fn world() -> impl Strategy<Value = World> {
    let profile = (1..3usize, 0..4usize);
    prop::collection::vec(profile, 1..5)
        .prop_flat_map(|shapes| {
            let profiles: Vec<Vec<Identifier>> = shapes
                .iter()
                .enumerate()
                .map(|(p, &(users, emails))| {
                    let mut ids: Vec<Identifier> = (0..users)
                        .map(|u| Identifier::new("user_id", format!("u{p}_{u}")))
                        .collect();
                    ids.extend(
                        (0..emails).map(|e| Identifier::new("email", format!("e{p}_{e}@x"))),
                    );
                    ids
                })
                .collect();
            let n = profiles.len();
            // An entry: which profile to look up (or an unknown one), which identifier (or an
            // absent one), and whether the lookup is explicit.
            let entry = (0..n + 1, 0..6usize, any::<bool>());
            (Just(profiles), prop::collection::vec(entry, 1..12))
        })
        .prop_map(|(profiles, picks)| {
            let entries = picks
                .into_iter()
                .enumerate()
                .map(|(line, (p, i, explicit))| {
                    let identifier = match profiles.get(p) {
                        Some(ids) if i < ids.len() => ids[i].clone(),
                        _ => Identifier::new("email", format!("absent{i}@x")),
                    };
                    let lookup = explicit
                        .then(|| Lookup::External(Identifier::new("user_id", format!("u{p}_0"))));
                    Entry {
                        lookup,
                        identifier,
                        origin: Location::new("m.yaml", line as u64 + 6, 5),
                    }
                })
                .collect();
            World { profiles, entries }
        })
}

/// Every lookup of `entries`, answered from `profiles`.
fn resolve(world: &World, entries: &[Entry]) -> BTreeMap<Lookup, Resolution> {
    entries
        .iter()
        .map(|e| {
            let lookup = idprune::plan::lookup_of(e);
            let found = world.profiles.iter().find(|ids| match &lookup {
                Lookup::External(id) => ids.contains(id),
                Lookup::SegmentId(_) => false,
            });
            let resolution = match found {
                Some(ids) => Resolution::Found(ids.clone()),
                None => Resolution::NotFound,
            };
            (lookup, resolution)
        })
        .collect()
}

const HEADER: Header<'static> = Header {
    format_version: state::FORMAT_VERSION,
    space: "spa_p",
    api_origin: "http://127.0.0.1:1",
    manifest_sha256: "00",
    pinned_sources: &[],
};

fn digest(plan: &Plan) -> String {
    let mut hasher = PlanHasher::new(&HEADER);
    for item in &plan.items {
        hasher.item(&ItemFields {
            seq: item.seq,
            user_id: item.user_id.as_deref(),
            kind: &item.identifier.kind,
            id: &item.identifier.id,
            action: item.action.as_str(),
            unverified: item.is_unverified(),
        });
    }
    hasher.finish()
}

/// What the digest is meant to cover.
fn sealed_fields(plan: &Plan) -> Vec<(u64, Option<String>, Identifier, &'static str)> {
    plan.items
        .iter()
        .map(|i| {
            (
                i.seq,
                i.user_id.clone(),
                i.identifier.clone(),
                i.action.as_str(),
            )
        })
        .collect()
}

fn meta() -> Meta {
    Meta {
        format_version: state::FORMAT_VERSION,
        digest: String::new(),
        space: HEADER.space.into(),
        region: "us".into(),
        api_origin: HEADER.api_origin.into(),
        manifest_path: "m.yaml".into(),
        manifest_sha256: HEADER.manifest_sha256.into(),
        reason: "property".into(),
        created_at: state::now_unix(),
        ttl_secs: 86_400,
    }
}

/// Seals `plan` into a fresh `0600` state file in `dir` and opens it.
fn sealed(dir: &std::path::Path, name: &str, plan: &Plan) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let digest = state::create(
        &path,
        &Seal {
            meta: meta(),
            sources: Vec::new(),
            plan,
        },
    )
    .expect("sealing the plan");
    (path, digest)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_digest_changes_exactly_when_the_sealed_items_do(
        world in world(),
        shuffle in any::<prop::sample::Index>(),
        swap_a in any::<prop::sample::Index>(),
        swap_b in any::<prop::sample::Index>(),
    ) {
        let original = idprune::plan::build(&world.entries, &resolve(&world, &world.entries));
        let mut permuted = world.entries.clone();
        // A random rotation and a random swap: together they reach every permutation.
        let len = permuted.len();
        permuted.rotate_left(shuffle.index(len));
        permuted.swap(swap_a.index(len), swap_b.index(len));
        let other = idprune::plan::build(&permuted, &resolve(&world, &permuted));
        prop_assert_eq!(
            digest(&original) == digest(&other),
            sealed_fields(&original) == sealed_fields(&other),
            "digest equality must follow item equality"
        );
        // The state file's seal is the same function.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (path, written) = sealed(dir.path(), "p.state.db", &original);
        prop_assert_eq!(&written, &digest(&original));
        let state = State::open(&path).expect("opening the state");
        prop_assert_eq!(state.recompute_digest().expect("recomputing"), written);
    }
}

// ---------------------------------------------------------------- crash anywhere, resume

/// An in-memory Unify: profiles by segment id, plus the deletes it applied. After `crash_after`
/// deletes it "dies": the next request may or may not be applied (`apply_last`), and it and
/// every later one never answer, as when the process is killed with requests in flight.
struct Fake {
    profiles: Arc<Mutex<BTreeMap<String, BTreeSet<Identifier>>>>,
    applied: Arc<Mutex<Vec<(String, Identifier)>>>,
    calls: AtomicUsize,
    crash_after: Option<usize>,
    apply_last: bool,
    dead: Arc<AtomicBool>,
    crashed: Arc<tokio::sync::Notify>,
}

impl Fake {
    fn reply<T>(result: Result<T, Fault>) -> Reply<T> {
        Reply {
            result,
            status: Some(200),
            request_id: None,
            elapsed: Duration::from_millis(1),
        }
    }
}

impl ProfileApi for Fake {
    async fn external_ids_page(&self, _: &Lookup, _: Option<&str>) -> Reply<ReadPage> {
        Fake::reply(Ok(ReadPage::NotFound))
    }

    async fn delete(&self, user_id: &str, identifier: &Identifier) -> Reply<DeleteOutcome> {
        if self.dead.load(Ordering::SeqCst) {
            return std::future::pending().await;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let dying = self.crash_after.is_some_and(|k| n >= k);
        if dying {
            self.dead.store(true, Ordering::SeqCst);
            self.crashed.notify_one();
            if !self.apply_last {
                return std::future::pending().await;
            }
        }
        let outcome = {
            let mut profiles = self.profiles.lock().expect("profiles");
            let owner = profiles
                .values_mut()
                .find(|ids| ids.contains(&Identifier::new("user_id", user_id)));
            match owner {
                None => DeleteOutcome::ProfileNotFound,
                Some(ids) => {
                    if ids.remove(identifier) {
                        self.applied
                            .lock()
                            .expect("applied")
                            .push((user_id.to_owned(), identifier.clone()));
                        DeleteOutcome::Deleted
                    } else {
                        DeleteOutcome::IdentifierNotFound
                    }
                }
            }
        };
        if dying {
            // Applied, but the answer never arrives.
            return std::future::pending().await;
        }
        tokio::task::yield_now().await;
        Fake::reply(Ok(outcome))
    }
}

fn store(world: &World) -> BTreeMap<String, BTreeSet<Identifier>> {
    world
        .profiles
        .iter()
        .enumerate()
        .map(|(p, ids)| (format!("use_{p}"), ids.iter().cloned().collect()))
        .collect()
}

fn options(concurrency: usize) -> ApplyOptions {
    ApplyOptions {
        concurrency,
        retry_failed: false,
        profile_rate: 0,
        pacer: None,
    }
}

/// Runs `execute` on the state at `path` against a fake; returns when it finishes or when
/// the fake crashes (the executor is then dropped mid-flight, like a killed process).
fn run_once(
    rt: &tokio::runtime::Runtime,
    path: &std::path::Path,
    profiles: &Arc<Mutex<BTreeMap<String, BTreeSet<Identifier>>>>,
    applied: &Arc<Mutex<Vec<(String, Identifier)>>>,
    crash: Option<(usize, bool)>,
    concurrency: usize,
) -> bool {
    let crashed = Arc::new(tokio::sync::Notify::new());
    let fake = Fake {
        profiles: profiles.clone(),
        applied: applied.clone(),
        calls: AtomicUsize::new(0),
        crash_after: crash.map(|c| c.0),
        apply_last: crash.is_some_and(|c| c.1),
        dead: Arc::new(AtomicBool::new(false)),
        crashed: crashed.clone(),
    };
    let mut state = State::open(path).expect("opening the state");
    // As `idprune apply` does: a journal without a recorded run is refused as tampered.
    state
        .start_run("prop", "host", "digest", "reason")
        .expect("recording the run");
    let (_cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let options = options(concurrency);
    rt.block_on(async {
        tokio::select! {
            report = execute(fake, &mut state, &options, cancel_rx, |_| {}) => {
                report.expect("the executor's journal works");
                false
            }
            () = crashed.notified() => true,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn crash_anywhere_then_resume_ends_like_an_uninterrupted_run(
        world in world(),
        crashes in prop::collection::vec((0..12usize, any::<bool>()), 0..4),
        concurrency in 1..6usize,
    ) {
        let plan = idprune::plan::build(&world.entries, &resolve(&world, &world.entries));
        let rt = runtime();
        let dir = tempfile::tempdir().expect("a temporary directory");

        // The uninterrupted run.
        let (straight, _) = sealed(dir.path(), "straight.state.db", &plan);
        let straight_profiles = Arc::new(Mutex::new(store(&world)));
        let straight_applied = Arc::new(Mutex::new(Vec::new()));
        run_once(&rt, &straight, &straight_profiles, &straight_applied, None, concurrency);

        // Crashes at the given points, each followed by a resume.
        let (crashy, _) = sealed(dir.path(), "crashy.state.db", &plan);
        let profiles = Arc::new(Mutex::new(store(&world)));
        let applied = Arc::new(Mutex::new(Vec::new()));
        for crash in &crashes {
            run_once(&rt, &crashy, &profiles, &applied, Some(*crash), concurrency);
            let state = State::open(&crashy).expect("reopening after the crash");
            state.integrity_check().expect("the journal survives a crash");
        }
        let crashed = run_once(&rt, &crashy, &profiles, &applied, None, concurrency);
        prop_assert!(!crashed);

        let end = profiles.lock().expect("profiles").clone();
        let straight_end = straight_profiles.lock().expect("profiles").clone();
        prop_assert_eq!(&end, &straight_end, "same profiles as the uninterrupted run");
        // Exactly the planned deletions, each applied once.
        let planned: BTreeSet<(String, Identifier)> = plan
            .items
            .iter()
            .filter(|i| i.action == idprune::plan::Action::Delete)
            .map(|i| (i.user_id.clone().expect("deletes have a user_id"), i.identifier.clone()))
            .collect();
        let applied = applied.lock().expect("applied").clone();
        let applied_set: BTreeSet<_> = applied.iter().cloned().collect();
        prop_assert_eq!(applied.len(), applied_set.len(), "nothing applied twice");
        prop_assert_eq!(&applied_set, &planned);
        let counts = State::open(&crashy).expect("opening").counts().expect("counts");
        prop_assert_eq!(counts.state(idprune::state::ItemState::Done), planned.len() as u64);
        prop_assert_eq!(counts.state(idprune::state::ItemState::Failed), 0);
        prop_assert_eq!(counts.state(idprune::state::ItemState::InFlight), 0);
        prop_assert_eq!(counts.state(idprune::state::ItemState::Pending), 0);
    }
}
