//! The plan digest: sha256 over a canonical encoding of everything `apply` will act on.
//!
//! Encoding (version 1), fed to sha256 in this order:
//! - the ASCII tag `idprune-plan-digest/1\n`;
//! - header fields as netstrings (`<decimal byte length>:<bytes>,`): `format_version`, `space`,
//!   the API origin (`scheme://host:port`), the manifest's sha256 (hex), the number of pinned
//!   sources, then each pinned source's path as written and its sha256;
//! - for a plan made under a policy (`idprune.policy.yaml` or `--policy FILE`) only, two more
//!   netstrings: `policy` and the policy file's sha256 (hex). Plans without a policy add
//!   nothing, so their digests are what they were before policies existed. What follows the
//!   pinned sources is `6:policy,`, the first `4:item,` or the end, so the two cannot be
//!   confused;
//! - for every item in `seq` order: the netstrings `item`, `seq` (decimal), then the `user_id`
//!   as `+` followed by its netstring or `-` when there is none, the identifier type, the
//!   identifier value, and the action (`delete`, `absent`, `blocked`, `unresolved`);
//! - for a `delete` planned without reading its profile (`plan --refresh=false`) only, one
//!   more netstring after the action: `unverified`. Items planned from a read add nothing, so
//!   the digests of plans made without the flag are what they were before it existed. What
//!   follows an action is `10:unverified,`, the next item's `4:item,` or the end, so the
//!   marker cannot be mistaken for anything else.
//!
//! Netstrings make the encoding unambiguous for any bytes in any value (tabs, newlines,
//! colons). The creation time is deliberately not included: the same manifest against the same
//! profiles yields the same digest. The result is written `sha256:<64 lowercase hex>`.

use sha2::{Digest as _, Sha256};

/// The tag that opens the canonical encoding; bumped when the encoding changes.
pub const ENCODING_TAG: &[u8] = b"idprune-plan-digest/1\n";
/// The prefix of a rendered digest.
pub const PREFIX: &str = "sha256:";

/// What the digest covers besides the items.
#[derive(Clone, Debug)]
pub struct Header<'a> {
    /// The state format version.
    pub format_version: u32,
    /// The Unify space id.
    pub space: &'a str,
    /// `scheme://host:port` of the API the plan was resolved against.
    pub api_origin: &'a str,
    /// Hex sha256 of the manifest's bytes.
    pub manifest_sha256: &'a str,
    /// `(path as written, hex sha256)` of every pinned source, in manifest order.
    pub pinned_sources: &'a [(String, String)],
    /// Hex sha256 of the policy file the plan was judged by, when there was one.
    pub policy_sha256: Option<&'a str>,
}

/// One item as the digest sees it.
#[derive(Clone, Copy, Debug)]
pub struct ItemFields<'a> {
    /// The item's sequence number.
    pub seq: u64,
    /// The user_id the delete addresses, if any.
    pub user_id: Option<&'a str>,
    /// Identifier type.
    pub kind: &'a str,
    /// Identifier value.
    pub id: &'a str,
    /// The action name.
    pub action: &'a str,
    /// A `delete` planned without reading the profile (`plan --refresh=false`).
    pub unverified: bool,
}

/// A streaming digest: feed the header, then every item in `seq` order.
pub struct PlanHasher {
    sha: Sha256,
}

impl PlanHasher {
    /// Starts a digest with its header.
    pub fn new(header: &Header<'_>) -> Self {
        let mut h = Self { sha: Sha256::new() };
        h.sha.update(ENCODING_TAG);
        h.field(header.format_version.to_string().as_bytes());
        h.field(header.space.as_bytes());
        h.field(header.api_origin.as_bytes());
        h.field(header.manifest_sha256.as_bytes());
        h.field(header.pinned_sources.len().to_string().as_bytes());
        for (path, sha) in header.pinned_sources {
            h.field(path.as_bytes());
            h.field(sha.as_bytes());
        }
        if let Some(policy) = header.policy_sha256 {
            h.field(b"policy");
            h.field(policy.as_bytes());
        }
        h
    }

    fn field(&mut self, bytes: &[u8]) {
        self.sha.update(bytes.len().to_string().as_bytes());
        self.sha.update(b":");
        self.sha.update(bytes);
        self.sha.update(b",");
    }

    /// Adds one item; items must come in `seq` order.
    pub fn item(&mut self, item: &ItemFields<'_>) {
        self.field(b"item");
        self.field(item.seq.to_string().as_bytes());
        match item.user_id {
            Some(uid) => {
                self.sha.update(b"+");
                self.field(uid.as_bytes());
            }
            None => self.sha.update(b"-"),
        }
        self.field(item.kind.as_bytes());
        self.field(item.id.as_bytes());
        self.field(item.action.as_bytes());
        if item.unverified {
            self.field(b"unverified");
        }
    }

    /// The digest, `sha256:<hex>`.
    pub fn finish(self) -> String {
        format!("{PREFIX}{}", hex::encode(self.sha.finalize()))
    }
}

/// Normalises what a person passes to `--approve`: with or without `sha256:`, any case.
/// Returns the bare lowercase hex, or `None` when it is not hex at all.
pub fn normalize_approval(text: &str) -> Option<String> {
    let hex = text
        .trim()
        .strip_prefix(PREFIX)
        .unwrap_or(text.trim())
        .to_ascii_lowercase();
    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// The shortest approval prefix accepted, in hex digits.
pub const MIN_APPROVAL_PREFIX: usize = 12;

/// True when `approval` names `digest`: the full hex, or a prefix of at least
/// [`MIN_APPROVAL_PREFIX`] hex digits.
pub fn approves(approval: &str, digest: &str) -> bool {
    let Some(hex) = normalize_approval(approval) else {
        return false;
    };
    let full = digest.strip_prefix(PREFIX).unwrap_or(digest);
    hex.len() >= MIN_APPROVAL_PREFIX && full.starts_with(&hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(items: &[ItemFields<'_>]) -> String {
        digest_with_policy(None, items)
    }

    fn digest_with_policy(policy: Option<&str>, items: &[ItemFields<'_>]) -> String {
        let pins = vec![("a.csv".to_owned(), "ff".to_owned())];
        let header = Header {
            format_version: 1,
            space: "spa_1",
            api_origin: "https://profiles.segment.com",
            manifest_sha256: "00",
            pinned_sources: &pins,
            policy_sha256: policy,
        };
        let mut h = PlanHasher::new(&header);
        for item in items {
            h.item(item);
        }
        h.finish()
    }

    fn item<'a>(seq: u64, uid: Option<&'a str>, id: &'a str) -> ItemFields<'a> {
        ItemFields {
            seq,
            user_id: uid,
            kind: "email",
            id,
            action: "delete",
            unverified: false,
        }
    }

    const GOLDEN: &str = "sha256:295ed37136762cbfc20da8399eb17763422988cf3aaeb963d4a94ef912979577";

    #[test]
    fn unverified_is_encoded_and_plans_without_it_keep_their_digest() {
        // The digest of this plan before `unverified` existed.
        assert_eq!(
            digest(&[item(1, Some("u1"), "a@x.com"), item(2, None, "b@x.com")]),
            GOLDEN
        );
        let marked = ItemFields {
            unverified: true,
            ..item(1, Some("u1"), "a@x.com")
        };
        assert_ne!(digest(&[marked, item(2, None, "b@x.com")]), GOLDEN);
    }

    #[test]
    fn a_policy_is_covered_and_plans_without_one_keep_their_digest() {
        let items = [item(1, Some("u1"), "a@x.com"), item(2, None, "b@x.com")];
        assert_eq!(digest(&items), GOLDEN);
        let a = digest_with_policy(Some("aa"), &items);
        assert_ne!(a, GOLDEN);
        assert_ne!(a, digest_with_policy(Some("ab"), &items));
        assert_eq!(a, digest_with_policy(Some("aa"), &items));
    }

    #[test]
    fn encoding_is_unambiguous() {
        // Moving bytes between adjacent fields must change the digest.
        let a = digest(&[item(1, Some("u1"), "x,1:y")]);
        let b = digest(&[item(1, Some("u1x"), ",1:y")]);
        assert_ne!(a, b);
        assert_ne!(
            digest(&[item(1, None, "x")]),
            digest(&[item(1, Some(""), "x")])
        );
        assert_eq!(a, digest(&[item(1, Some("u1"), "x,1:y")]));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
    }

    #[test]
    fn approval_forms() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(approves(d, d));
        assert!(approves(&d[7..], d));
        assert!(approves("0123456789AB", d));
        assert!(!approves("0123456789a", d));
        assert!(!approves("1123456789ab", d));
        assert!(!approves("", d));
        assert!(!approves("sha256:zz", d));
    }
}
