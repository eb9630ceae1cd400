//! Masked previews and keyed fingerprints: how the pull-request views show an identifier
//! without revealing it. A preview shows the kind of value (an email keeps its domain:
//! `j•••@import.invalid`; anything else its first character), a fingerprint is a short
//! HMAC-SHA256 of the type and value under a key, so the same identifier gets the same
//! fingerprint in every view made with that key, and nobody without the key can confirm a
//! guess (a plain hash of an email address is reversed by a dictionary).
//!
//! The key is `IDPRUNE_FINGERPRINT_KEY` when set (so views made by different CI jobs agree),
//! else a random key kept in the state file's meta table (`fingerprint_key`), which holds the
//! personal data anyway. This module formats values only; escaping for markdown is the
//! caller's job.

use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use crate::model::Identifier;
use crate::state::State;

/// The meta key holding a state file's own fingerprint key (hex).
pub const META_KEY: &str = crate::state::FINGERPRINT_KEY_META;
/// The environment variable that overrides the stored key.
pub const KEY_ENV: &str = "IDPRUNE_FINGERPRINT_KEY";
/// What stands for the hidden part of a value.
pub const BULLETS: &str = "•••";
/// Hex digits of a short fingerprint (32 bits: enough to tell values apart in one plan).
pub const SHORT_HEX: usize = 8;

/// How much of a value a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedactLevel {
    /// A masked preview (an email keeps its domain) and a keyed fingerprint.
    Preview,
    /// Only the type and a keyed fingerprint.
    Full,
}

/// Shows identifier values as the view's redaction asks.
#[derive(Clone, Debug)]
pub struct Masker {
    /// `None`: values are revealed.
    level: Option<RedactLevel>,
    key: Vec<u8>,
}

impl Masker {
    /// A masker at `level` (`None` reveals) with the fingerprint key `key`.
    pub fn new(level: Option<RedactLevel>, key: Vec<u8>) -> Self {
        Self { level, key }
    }

    /// A masker for the views of `state`: the key from [`KEY_ENV`], else the state's own.
    pub fn for_state(state: &State, level: Option<RedactLevel>) -> anyhow::Result<Self> {
        Ok(Self::new(level, key(state)?))
    }

    /// True when values are hidden.
    pub fn hides(&self) -> bool {
        self.level.is_some()
    }

    /// The short keyed fingerprint of an identifier: 8 hex digits.
    pub fn fingerprint(&self, kind: &str, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"idprune-view/1\0");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..SHORT_HEX / 2])
    }

    /// A value as shown (not escaped): revealed, a preview with its fingerprint, or only the
    /// fingerprint.
    pub fn value(&self, kind: &str, value: &str) -> String {
        match self.level {
            None => value.to_owned(),
            Some(RedactLevel::Preview) => {
                format!(
                    "{} ~{}",
                    preview(kind, value),
                    self.fingerprint(kind, value)
                )
            }
            Some(RedactLevel::Full) => format!("{BULLETS} ~{}", self.fingerprint(kind, value)),
        }
    }

    /// `type:value` as shown.
    pub fn ident(&self, i: &Identifier) -> String {
        format!("{}:{}", i.kind, self.value(&i.kind, &i.id))
    }

    /// A lookup (`TYPE:VALUE`, or a bare segment id) as shown.
    pub fn lookup(&self, lookup: &str) -> String {
        match lookup.split_once(':') {
            Some((kind, value)) => format!("{kind}:{}", self.value(kind, value)),
            None => self.value("segment_id", lookup),
        }
    }

    /// The shape of an identifier for grouping: the email domain at preview level, else
    /// nothing beyond the type.
    pub fn shape(&self, i: &Identifier) -> Option<String> {
        match self.level {
            Some(RedactLevel::Full) => None,
            _ => email_domain(&i.kind, &i.id).map(|d| format!("@{d}")),
        }
    }
}

fn email_domain<'a>(kind: &str, value: &'a str) -> Option<&'a str> {
    if kind != "email" {
        return None;
    }
    value
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// A masked preview: `j•••@import.invalid` for an email, the first character and bullets for
/// a value of four characters or more, bullets alone for a shorter one.
pub fn preview(kind: &str, value: &str) -> String {
    if let Some(domain) = email_domain(kind, value) {
        let first = value.chars().next().filter(|c| *c != '@');
        return format!(
            "{}{BULLETS}@{domain}",
            first.map(String::from).unwrap_or_default()
        );
    }
    if value.chars().count() >= 4 {
        let first = value.chars().next().map(String::from).unwrap_or_default();
        format!("{first}{BULLETS}")
    } else {
        BULLETS.to_owned()
    }
}

/// The fingerprint key of `state`'s views: [`KEY_ENV`] when set and non-empty, else the
/// state file's stored key, else (an older file) a random one for this view only.
pub fn key(state: &State) -> anyhow::Result<Vec<u8>> {
    if let Ok(k) = std::env::var(KEY_ENV)
        && !k.trim().is_empty()
    {
        return Ok(k.trim().as_bytes().to_vec());
    }
    let stored = state.optional_meta(META_KEY)?;
    match stored.and_then(|h| hex::decode(h).ok()) {
        Some(k) if !k.is_empty() => Ok(k),
        _ => Ok(random_key()),
    }
}

fn random_key() -> Vec<u8> {
    let mut k = vec![0u8; 32];
    rand::rng().fill_bytes(&mut k);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_keep_the_kind_of_value_only() {
        assert_eq!(
            preview("email", "jane@import.invalid"),
            "j•••@import.invalid"
        );
        assert_eq!(preview("email", "@x.io"), "•••@x.io");
        assert_eq!(preview("email", "no-at-sign"), "n•••");
        assert_eq!(preview("phone", "+15551234567"), "+•••");
        assert_eq!(preview("user_id", "u1"), "•••");
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let a = Masker::new(Some(RedactLevel::Preview), b"key-one".to_vec());
        let b = Masker::new(Some(RedactLevel::Preview), b"key-two".to_vec());
        assert_eq!(a.fingerprint("email", "x@y"), a.fingerprint("email", "x@y"));
        assert_ne!(a.fingerprint("email", "x@y"), b.fingerprint("email", "x@y"));
        assert_ne!(a.fingerprint("email", "x@y"), a.fingerprint("phone", "x@y"));
        assert_eq!(a.fingerprint("email", "x@y").len(), SHORT_HEX);
    }

    #[test]
    fn levels_hide_what_they_say() {
        let i = Identifier::new("email", "jane@import.invalid");
        let full = Masker::new(Some(RedactLevel::Full), b"k".to_vec());
        let shown = full.ident(&i);
        assert!(
            !shown.contains("import.invalid") && !shown.contains("jane"),
            "{shown}"
        );
        let preview = Masker::new(Some(RedactLevel::Preview), b"k".to_vec());
        assert!(preview.ident(&i).starts_with("email:j•••@import.invalid ~"));
        assert_eq!(
            Masker::new(None, vec![]).ident(&i),
            "email:jane@import.invalid"
        );
        assert_eq!(
            preview.lookup("user_id:u_1234"),
            format!("user_id:u••• ~{}", preview.fingerprint("user_id", "u_1234"))
        );
    }
}
