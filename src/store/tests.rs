//! The store against `file://` and against a real S3-compatible server (moto's, started here
//! on 127.0.0.1 port 0). A missing `moto_server` fails these tests: CI installs it.

use std::time::Duration;

use super::*;
use crate::exit::Refused;
use crate::state::testing::{delete_item, sealed};

fn key(byte: u8) -> StateKey {
    StateKey::from_bytes([byte; 32])
}

fn is_refusal(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Refused>().is_some()
}

// Shared with the integration tests, which use other parts of it.
#[allow(dead_code)]
#[path = "../../tests/support/moto.rs"]
mod moto;
use moto::Moto;

impl Moto {
    /// Creates `bucket` and opens the remote `s3://bucket/object` on this server.
    async fn remote(&self, bucket: &str, object: &str, key: StateKey) -> Remote {
        self.create_bucket(bucket);
        self.open(bucket, object, key)
    }

    fn open(&self, bucket: &str, object: &str, key: StateKey) -> Remote {
        let url = Url::parse(&format!("s3://{bucket}/{object}")).expect("url");
        Remote::open_with(&url, key, &self.overrides()).expect("open remote")
    }
}

fn file_remote(dir: &std::path::Path, object: &str, key: StateKey) -> Remote {
    let url = Url::from_file_path(dir.join(object)).expect("file url");
    Remote::open(&url, key).expect("open remote")
}

#[test]
fn locations() {
    assert_eq!(
        Location::parse("plans/x.state.db").expect("path"),
        Location::Local("plans/x.state.db".into())
    );
    for url in [
        "s3://b/plans/x.state",
        "gs://b/x",
        "az://account/container/x",
        "file:///tmp/x.state",
    ] {
        assert!(
            matches!(Location::parse(url).expect(url), Location::Remote(_)),
            "{url}"
        );
    }
    for (bad, says) in [
        ("http://example.com/x", "scheme `http`"),
        ("s3://bucket/", "names no object"),
        ("s3://bucket", "names no object"),
        ("", "empty"),
    ] {
        let e = Location::parse(bad).expect_err(bad);
        assert!(e.to_string().contains(says), "{bad}: {e:#}");
    }
    let url = Url::parse("s3://AKIA:secret@bucket/x").expect("url");
    let e = Remote::open(&url, key(1))
        .err()
        .expect("credentials in URL");
    assert!(!e.to_string().contains("secret"), "{e:#}");
}

#[test]
fn missing_key_says_how_to_make_one() {
    let e = require_key(None, "s3://b/x").err();
    // The environment may hold a key on a developer's machine; the file form is always testable.
    if let Some(e) = e {
        assert!(e.to_string().contains("openssl rand -base64 32"), "{e:#}");
        assert!(e.to_string().contains("nothing was pushed"), "{e:#}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("k");
    std::fs::write(&file, "short").expect("write");
    let e = load_key(Some(&file)).expect_err("short key");
    assert!(e.to_string().contains("openssl rand -base64 32"), "{e:#}");
}

/// Push, pull into an empty folder, wrong key, flipped byte, no identifier in the clear.
async fn round_trip(
    remote: Remote,
    wrong: Remote,
    raw: impl AsyncFn() -> Vec<u8>,
    put_raw: impl AsyncFn(Vec<u8>),
) {
    let here = tempfile::tempdir().expect("tempdir");
    let state = sealed(
        here.path(),
        &[
            delete_item(1, "u-secret-1", "alice.identifier@example.com"),
            delete_item(2, "u-secret-2", "bob.identifier@example.com"),
        ],
    );
    let digest = state.meta().expect("meta").digest;
    let local = state.path().to_owned();

    let chain = remote.lock_chain();
    let lease = chain.acquire("plan", DEFAULT_LEASE).await.expect("lease");
    let size = remote.push(&lease, &local, 0).await.expect("push");
    assert!(size > 0);

    // Nothing identifying is in the object's bytes.
    let bytes = raw().await;
    assert_eq!(bytes.len(), size);
    for needle in [
        "alice.identifier",
        "example.com",
        "u-secret-1",
        "SQLite format",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` in the object"
        );
    }

    // A second machine: an empty folder pulls and opens the sealed state.
    let there = tempfile::tempdir().expect("tempdir");
    let copy = there.path().join("x.state.db");
    assert!(matches!(
        remote.pull(&copy).await.expect("pull"),
        Pulled::Fetched { .. }
    ));
    let opened = crate::state::State::open(&copy).expect("open pulled");
    assert_eq!(opened.meta().expect("meta").digest, digest);
    drop(opened);

    // A wrong key: an error (exit 1), not a refusal; pushing with it overwrites nothing.
    let e = wrong.pull(&copy).await.expect_err("wrong key");
    assert!(!is_refusal(&e), "{e:#}");
    assert!(e.to_string().contains("another state key"), "{e:#}");
    lease.release().await.expect("release");
    let wrong_lease = wrong
        .lock_chain()
        .acquire("apply", DEFAULT_LEASE)
        .await
        .expect("lease");
    let e = wrong
        .push(&wrong_lease, &local, 0)
        .await
        .expect_err("wrong key push");
    assert!(!is_refusal(&e), "{e:#}");
    assert_eq!(raw().await, bytes, "the object changed");
    wrong_lease.release().await.expect("release");
    // The working copy survived the failed pull.
    assert!(crate::state::State::open(&copy).is_ok());

    // One flipped byte in the ciphertext: refused (exit 4), the working copy untouched.
    let mut edited = bytes.clone();
    let last = edited.len() - 20;
    edited[last] ^= 0x40;
    put_raw(edited).await;
    let e = remote.pull(&copy).await.expect_err("edited");
    assert!(is_refusal(&e), "{e:#}");
    assert!(crate::state::State::open(&copy).is_ok());
}

/// The lease: held refuses naming the holder; expired is taken over; the loser of a renewal
/// learns it; `unlock` breaks by id only.
async fn leases(remote: &Remote) {
    let chain = remote.lock_chain();
    let mut first = chain.acquire("apply", DEFAULT_LEASE).await.expect("first");
    first.renew().await.expect("renew");
    let e = chain
        .acquire("apply", DEFAULT_LEASE)
        .await
        .err()
        .expect("held");
    assert!(is_refusal(&e), "{e:#}");
    let text = e.to_string();
    assert!(text.contains(&first.record().lock_id), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("idprune unlock"), "{text}");

    // `unlock` with the wrong id does nothing; with the right one it frees the state.
    let e = chain.unlock("0000").await.expect_err("wrong id");
    assert!(e.to_string().contains("not `0000`"), "{e:#}");
    let broken = chain.unlock(&first.record().lock_id).await.expect("unlock");
    assert_eq!(broken.lock_id, first.record().lock_id);
    // The broken holder's next renewal fails: it must stop writing.
    let e = first.renew().await.expect_err("lost");
    assert!(is_refusal(&e) && e.to_string().contains("broken"), "{e:#}");

    // A lease of zero length is expired at once and taken over by the next taker.
    let short = chain.acquire("apply", Duration::ZERO).await.expect("short");
    let taker = chain
        .acquire("apply", DEFAULT_LEASE)
        .await
        .expect("takeover");
    let e = short.check().await.expect_err("taken over");
    assert!(e.to_string().contains(&taker.record().lock_id), "{e:#}");
    let (_, now) = chain.current().await.expect("current").expect("some");
    assert_eq!(now.lock_id, taker.record().lock_id);

    // Two takers racing for a free lease: exactly one wins.
    taker.release().await.expect("release");
    let (a, b) = tokio::join!(
        chain.acquire("apply", DEFAULT_LEASE),
        chain.acquire("plan", DEFAULT_LEASE)
    );
    assert!(a.is_ok() != b.is_ok(), "both or neither won");
    // Old generations are pruned: at most the newest two remain.
    assert!(chain.generations().await.expect("list").len() <= 2);
}

#[tokio::test]
async fn file_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let object = dir.path().join("store/plans/x.state");
    let raw = async || std::fs::read(&object).expect("read object");
    let put_raw = async |bytes: Vec<u8>| std::fs::write(&object, bytes).expect("write object");
    round_trip(
        file_remote(dir.path(), "store/plans/x.state", key(1)),
        file_remote(dir.path(), "store/plans/x.state", key(2)),
        raw,
        put_raw,
    )
    .await;
    leases(&file_remote(dir.path(), "store/plans/y.state", key(1))).await;
}

#[tokio::test]
async fn s3_store() {
    let moto = Moto::start();
    let remote = moto.remote("idprune-test", "plans/x.state", key(1)).await;
    // The object's bytes as stored, read and written past idprune's envelope.
    let side = moto.open("idprune-test", "plans/x.state", key(1));
    let raw = async || side.fetch_sealed().await.expect("get").expect("present");
    let put_raw = async |bytes: Vec<u8>| {
        side.store
            .put(&side.object, PutPayload::from(bytes))
            .await
            .expect("put");
    };
    round_trip(
        remote,
        moto.open("idprune-test", "plans/x.state", key(2)),
        raw,
        put_raw,
    )
    .await;
    leases(&moto.open("idprune-test", "plans/y.state", key(1))).await;
}

/// A CSV source in a store: fetched whole into an unnamed 0600 file with its sha256; an object
/// over the cap refused, naming the URL and the cap; a missing one said so.
#[tokio::test]
async fn source_fetch() {
    use sha2::Digest as _;
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::io::AsRawFd as _;

    let moto = Moto::start();
    let side = moto
        .remote("idprune-sources", "2026-11/bad.csv", key(1))
        .await;
    let body = b"user_id,email\nu_1,a@x.invalid\n".repeat(1000);
    side.store
        .put(&side.object, PutPayload::from(body.clone()))
        .await
        .expect("put");
    let url = Url::parse("s3://idprune-sources/2026-11/bad.csv").expect("url");
    let overrides = moto.overrides();
    let size = body.len() as u64;
    let mut got = source::fetch(&url, size, &overrides).await.expect("fetch");
    assert_eq!(got.bytes, size);
    assert_eq!(got.sha256, hex::encode(sha2::Sha256::digest(&body)));
    let mode = got.file.metadata().expect("metadata").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let name =
        std::fs::read_link(format!("/proc/self/fd/{}", got.file.as_raw_fd())).expect("readlink");
    assert!(
        name.to_string_lossy().ends_with("(deleted)"),
        "the copy has a name: {}",
        name.display()
    );
    let mut read = Vec::new();
    got.file.read_to_end(&mut read).expect("read");
    assert_eq!(read, body);

    let err = source::fetch(&url, size - 1, &overrides)
        .await
        .expect_err("over the cap");
    let message = format!("{err:#}");
    assert!(message.contains(url.as_str()), "{message}");
    assert!(
        message.contains(&format!("{size} bytes, over the {}-byte", size - 1)),
        "{message}"
    );

    let gone = Url::parse("s3://idprune-sources/gone.csv").expect("url");
    let err = source::fetch(&gone, size, &overrides)
        .await
        .expect_err("absent");
    assert!(
        format!("{err:#}").contains("does not exist in the store"),
        "{err:#}"
    );
}
