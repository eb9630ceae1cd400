//! Purging a finished state file: every raw identifier value (lookups, `user_id`s, identifier
//! values, profile keys and before-states) is replaced by a keyed fingerprint, while seqs,
//! types, actions, outcomes, request ids and the runs table stay as the audit trail. With the
//! same key, anyone can later check whether a given identifier was in the plan; without it the
//! fingerprints reveal nothing guessable (unlike a plain hash of an email address).
//!
//! The purged rows get a new file seal, so the record stays sealed. Old values must not
//! survive on disk: `secure_delete` zeroes freed content, the WAL is
//! checkpointed and truncated, and the file is vacuumed.

use anyhow::{Context as _, bail};
use hmac::{Hmac, Mac as _};
use rusqlite::params;
use sha2::Sha256;

use super::{ItemState, State, now_unix};

/// The prefix of a fingerprinted value.
pub const FINGERPRINT_PREFIX: &str = "hmac:";
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// The fingerprint of one identifier: `hmac:` and 32 hex digits of HMAC-SHA256 over
/// `type`, a NUL byte and the value.
pub fn fingerprint(key: &[u8], kind: &str, value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(kind.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("{FINGERPRINT_PREFIX}{}", hex::encode(&digest[..16]))
}

/// `TYPE:VALUE` (or a bare segment id) with the value fingerprinted.
fn fingerprint_lookup(key: &[u8], lookup: &str) -> String {
    match lookup.split_once(':') {
        Some((kind, value)) => format!("{kind}:{}", fingerprint(key, kind, value)),
        None => format!("segment_id:{}", fingerprint(key, "segment_id", lookup)),
    }
}

impl State {
    /// When the file was purged (Unix seconds), if it was.
    pub fn purged_at(&self) -> anyhow::Result<Option<i64>> {
        use rusqlite::OptionalExtension as _;
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'purged_at'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// Replaces every identifier value with its fingerprint under `key`. Refuses while the
    /// plan has items still to send, before any apply ran, or twice.
    pub fn purge(&mut self, key: &[u8]) -> anyhow::Result<u64> {
        self.refuse_purge(key)?;
        let tx = self.conn.transaction()?;
        let purged = fingerprint_items(&tx, key)?;
        fingerprint_profiles(&tx, key)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('purged_at', ?1)",
            [now_unix().to_string()],
        )?;
        // The purged rows are sealed in turn: the views of the record stay bound to it.
        let seal = super::check::file_seal(&tx)?;
        tx.execute(
            "UPDATE meta SET value = ?2 WHERE key = ?1",
            params![super::check::FILE_SEAL_KEY, seal],
        )?;
        tx.commit()?;
        self.conn.execute_batch(
            "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
        )?;
        Ok(purged)
    }

    /// Refuses a key too short, a file already purged, one never applied, and one with
    /// items still to send.
    fn refuse_purge(&self, key: &[u8]) -> anyhow::Result<()> {
        if key.len() < MIN_KEY_BYTES {
            bail!(
                "the fingerprint key is {} bytes; use at least {MIN_KEY_BYTES}",
                key.len()
            );
        }
        if self.purged_at()?.is_some() {
            bail!("state file `{}` is already purged", self.path.display());
        }
        if !self.has_journal()? {
            bail!(
                "state file `{}` was never applied; purge keeps the record of a finished run",
                self.path.display()
            );
        }
        let counts = self.counts()?;
        let open = counts.state(ItemState::Pending) + counts.state(ItemState::InFlight);
        if open > 0 {
            bail!(
                "state file `{}` still has {open} items to send; finish with `idprune apply` first",
                self.path.display()
            );
        }
        Ok(())
    }
}

/// Replaces the identifier values of every item with their fingerprints; how many items.
fn fingerprint_items(tx: &rusqlite::Transaction<'_>, key: &[u8]) -> anyhow::Result<u64> {
    let mut purged = 0u64;
    let mut read =
        tx.prepare("SELECT seq, lookup, profile, user_id, id_type, id_value FROM items")?;
    let mut write = tx.prepare(
        "UPDATE items SET lookup = ?2, profile = ?3, user_id = ?4, id_value = ?5 WHERE seq = ?1",
    )?;
    let rows = read.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    for row in rows {
        let (seq, lookup, profile, user_id, kind, value) = row?;
        write.execute(params![
            seq,
            fingerprint_lookup(key, &lookup),
            profile.map(|p| fingerprint_lookup(key, &p)),
            user_id.map(|u| fingerprint(key, "user_id", &u)),
            fingerprint(key, &kind, &value),
        ])?;
        purged += 1;
    }
    Ok(purged)
}

/// Replaces the profiles' keys, lookups and before-states with their fingerprints.
fn fingerprint_profiles(tx: &rusqlite::Transaction<'_>, key: &[u8]) -> anyhow::Result<()> {
    let mut read = tx.prepare("SELECT key, lookup, before FROM profiles")?;
    let profiles = read
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut write =
        tx.prepare("UPDATE profiles SET key = ?2, lookup = ?3, before = ?4 WHERE key = ?1")?;
    for (pkey, lookup, before) in profiles {
        let pairs: Vec<(String, String)> =
            serde_json::from_str(&before).context("a profile row is damaged")?;
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.clone(), fingerprint(key, &k, &v)))
            .collect();
        write.execute(params![
            pkey,
            fingerprint_lookup(key, &pkey),
            fingerprint_lookup(key, &lookup),
            serde_json::to_string(&pairs)?
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{delete_item, sealed};
    use crate::state::{Journal, Outcome};

    #[test]
    fn purge_refuses_open_work_then_leaves_no_value_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = sealed(dir.path(), &[delete_item(1, "secret-uid", "secret@x.com")]);
        let key = b"0123456789abcdef0123";
        assert!(state.purge(key).is_err(), "never applied");
        let run = state.start_run("u", "h", "d", "r", None).expect("run");
        assert!(state.purge(key).is_err(), "an item is still pending");
        state
            .record(&[Outcome {
                seq: 1,
                journal: Journal {
                    last_status: Some(200),
                    request_id: Some("req_1".into()),
                    ..Journal::new(ItemState::Done)
                },
                attempts: 1,
            }])
            .expect("record");
        state
            .finish_run(run, "completed", &Default::default())
            .expect("finish run");
        assert_eq!(state.purge(key).expect("purge"), 1);
        assert!(state.purge(key).is_err(), "twice");
        drop(state);
        for entry in std::fs::read_dir(dir.path()).expect("list") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("secret@x.com") && !text.contains("secret-uid"),
                "a value survived"
            );
        }
    }

    #[test]
    fn fingerprints_are_keyed_and_typed() {
        let k1 = b"0123456789abcdef";
        let k2 = b"0123456789abcdeg";
        let a = fingerprint(k1, "email", "a@x.com");
        assert!(a.starts_with(FINGERPRINT_PREFIX) && a.len() == FINGERPRINT_PREFIX.len() + 32);
        assert_eq!(a, fingerprint(k1, "email", "a@x.com"));
        assert_ne!(a, fingerprint(k2, "email", "a@x.com"));
        assert_ne!(a, fingerprint(k1, "user_id", "a@x.com"));
        assert!(fingerprint_lookup(k1, "user_id:u1").starts_with("user_id:hmac:"));
        assert!(fingerprint_lookup(k1, "use_abc").starts_with("segment_id:hmac:"));
    }
}
