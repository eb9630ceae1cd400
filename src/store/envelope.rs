//! The encrypted envelope a state file travels in: what the store holds is never the SQLite
//! file itself but this, sealed with AES-256-GCM under the team's state key.
//!
//! Layout, version 1 (all of it authenticated):
//!
//! ```text
//! magic "IDPRUNE\x01" (8) | version (1) | key id (8) | nonce (12) | ciphertext + tag (16)
//! ```
//!
//! The associated data is the header (magic, version, key id, nonce) followed by the object's
//! key in the store, so an object copied to another key, or a header edited, fails to open.
//! The key id (the first 8 bytes of SHA-256 over a domain label and the key) tells a wrong key
//! (an error, exit 1: the fix is the key) apart from an edited object (a [`Refused`], exit 4:
//! the object cannot be trusted); it reveals nothing of the key. Nonces are 96 random bits per
//! seal, far below the 2^32 seals per key where random nonces start to matter.
//!
//! This module does no I/O; [`super`] moves the bytes.

use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use anyhow::bail;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::exit::Refused;

/// The first bytes of every envelope.
pub const MAGIC: &[u8; 8] = b"IDPRUNE\x01";
/// The envelope format this build writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the key id.
const KEY_ID_LEN: usize = 8;
/// Bytes of the AES-GCM nonce.
const NONCE_LEN: usize = 12;
/// Bytes of the AES-GCM tag.
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext: magic, version, key id, nonce.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN + NONCE_LEN;

/// How to make a key, said wherever one is missing or malformed.
pub const MAKE_A_KEY: &str = "make one with `openssl rand -base64 32`, keep it in your CI secrets and set `IDPRUNE_STATE_KEY` (or pass `--state-key-file`)";

/// The 32-byte state key. Its `Debug` shows only the key id.
pub struct StateKey {
    key: [u8; 32],
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateKey(id {})", hex::encode(self.id()))
    }
}

impl Clone for StateKey {
    fn clone(&self) -> Self {
        Self { key: self.key }
    }
}

impl Drop for StateKey {
    fn drop(&mut self) {
        self.key.fill(0);
    }
}

impl StateKey {
    /// Parses a key from its base64 text (surrounding whitespace ignored); `source` names
    /// where the text came from, for the error.
    pub fn from_base64(text: &str, source: &str) -> anyhow::Result<Self> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                anyhow::anyhow!("the state key in {source} is not base64; {MAKE_A_KEY}")
            })?;
        let Ok(key) = <[u8; 32]>::try_from(decoded.as_slice()) else {
            bail!(
                "the state key in {source} is {} bytes, not 32; {MAKE_A_KEY}",
                decoded.len()
            );
        };
        Ok(Self { key })
    }

    /// A key from raw bytes (tests and benchmarks).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The key's id: safe to store and show, the same for the same key.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(b"idprune state key id v1\0");
        hasher.update(self.key);
        let digest = hasher.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.key.into())
    }
}

fn aad(header: &[u8], object: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + object.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(object.as_bytes());
    aad
}

/// Seals `plain` for the store object `object` under `key`.
pub fn seal(key: &StateKey, object: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&key.id());
    out.extend_from_slice(&nonce);
    let aad = aad(&out, object);
    let sealed = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .map_err(|_| anyhow::anyhow!("encrypting the state for `{object}` failed"))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Checks that `sealed` is an envelope this build reads, sealed under `key`: a wrong key is an
/// error naming the fix; anything that is not an envelope is a [`Refused`]. Reads the header
/// only, so it can run on the first [`HEADER_LEN`] bytes.
pub fn check_key(key: &StateKey, object: &str, sealed: &[u8]) -> anyhow::Result<()> {
    if sealed.len() < HEADER_LEN || &sealed[..MAGIC.len()] != MAGIC {
        return Err(Refused(format!(
            "store object `{object}` is not an idprune state envelope (edited, or written by something else); nothing was changed: restore it from the store's version history, or remove it and plan again"
        ))
        .into());
    }
    let version = sealed[MAGIC.len()];
    if version != VERSION {
        return Err(Refused(format!(
            "store object `{object}` is envelope version {version}, and this idprune reads version {VERSION}; use the idprune that wrote it"
        ))
        .into());
    }
    let id = &sealed[MAGIC.len() + 1..MAGIC.len() + 1 + KEY_ID_LEN];
    if id != key.id() {
        bail!(
            "store object `{object}` was encrypted with another state key (key id {}, yours is {}); nothing was changed: set `IDPRUNE_STATE_KEY` (or `--state-key-file`) to the key it was written with",
            hex::encode(id),
            hex::encode(key.id())
        );
    }
    Ok(())
}

/// Opens an envelope read from the store object `object`: a wrong key is an error (exit 1),
/// an edited object a [`Refused`] (exit 4).
pub fn open(key: &StateKey, object: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    check_key(key, object, sealed)?;
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(edited(object));
    }
    let (header, body) = sealed.split_at(HEADER_LEN);
    let nonce = &header[HEADER_LEN - NONCE_LEN..];
    let aad = aad(header, object);
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .map_err(|_| edited(object))
}

fn edited(object: &str) -> anyhow::Error {
    Refused(format!(
        "store object `{object}` fails its authentication check: it was edited or damaged after idprune wrote it; nothing was sent or changed: restore it from the store's version history"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> StateKey {
        StateKey::from_bytes([byte; 32])
    }

    fn is_refusal(e: &anyhow::Error) -> bool {
        e.downcast_ref::<Refused>().is_some()
    }

    #[test]
    fn round_trip() {
        let sealed = seal(&key(1), "plans/x.state", b"hello state").expect("seal");
        assert_eq!(
            open(&key(1), "plans/x.state", &sealed).expect("open"),
            b"hello state"
        );
        // Two seals of the same bytes differ (fresh nonce) and hold no plaintext.
        let again = seal(&key(1), "plans/x.state", b"hello state").expect("seal");
        assert_ne!(sealed, again);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn wrong_key_is_an_error_not_a_refusal() {
        let sealed = seal(&key(1), "o", b"x").expect("seal");
        let e = open(&key(2), "o", &sealed).expect_err("wrong key");
        assert!(!is_refusal(&e), "{e:#}");
        assert!(e.to_string().contains("another state key"), "{e:#}");
    }

    #[test]
    fn every_flipped_byte_is_refused_or_a_wrong_key() {
        let sealed = seal(&key(1), "o", b"some plaintext bytes").expect("seal");
        let key_id = MAGIC.len() + 1..MAGIC.len() + 1 + KEY_ID_LEN;
        for i in 0..sealed.len() {
            let mut edited = sealed.clone();
            edited[i] ^= 0x01;
            let e = open(&key(1), "o", &edited).expect_err("edited");
            // A flipped key-id byte reads as another key; every other byte is a refusal.
            assert_eq!(is_refusal(&e), !key_id.contains(&i), "byte {i}: {e:#}");
        }
    }

    #[test]
    fn bound_to_its_object_key() {
        let sealed = seal(&key(1), "plans/a.state", b"x").expect("seal");
        let e = open(&key(1), "plans/b.state", &sealed).expect_err("moved");
        assert!(is_refusal(&e), "{e:#}");
    }

    #[test]
    fn truncated_and_foreign_objects_are_refused() {
        let sealed = seal(&key(1), "o", b"x").expect("seal");
        for cut in [0, 4, HEADER_LEN, HEADER_LEN + 3, sealed.len() - 1] {
            let e = open(&key(1), "o", &sealed[..cut]).expect_err("truncated");
            assert!(is_refusal(&e), "cut {cut}: {e:#}");
        }
        let e = open(&key(1), "o", b"SQLite format 3\0 and more bytes here").expect_err("plain");
        assert!(is_refusal(&e), "{e:#}");
    }

    #[test]
    fn key_parsing() {
        let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(StateKey::from_base64(&format!(" {good}\n"), "`k`").is_ok());
        for bad in ["", "not base64!", "AAAA"] {
            let e = StateKey::from_base64(bad, "`IDPRUNE_STATE_KEY`").expect_err(bad);
            let text = e.to_string();
            assert!(text.contains("`IDPRUNE_STATE_KEY`"), "{text}");
            assert!(text.contains("openssl rand -base64 32"), "{text}");
        }
        assert!(!format!("{:?}", key(9)).contains("9, 9"));
    }
}
