//! The plan receipt: a small JSON file, committed beside the manifest in the pull request, that
//! names a sealed plan without holding any personal data. It carries the digest, the space, the
//! API origin, the manifest's and the pinned sources' sha256, counts by action and by
//! identifier type, and the creation and expiry times — never an identifier value, a lookup or
//! a `user_id`. `plan --check-receipt` compares a fresh plan with it; `apply MANIFEST --receipt`
//! applies a fresh plan only when its digest is the receipt's.
//!
//! What must match for a receipt to name a fresh plan: every field it shows. The digest
//! already covers the space, the API origin, the manifest's and the pinned sources' hashes and
//! every item, so a genuine receipt whose digest matches matches everywhere; a receipt whose
//! other fields (counts, region, manifest, sources) disagree with its own digest was edited,
//! and is refused like a stale one — a reviewer reads those fields, not the digest.
//!
//! The times naturally differ between the receipt's plan and a fresh one. Expiry comes from
//! the sealed plan, never from the receipt: a receipt's own times can only shorten its life.
//! Its span (`expires_at − created_at`) may not exceed the TTL sealed in the plan it is checked
//! against, and its `created_at` may not lie in the future, so an edited `expires_at` cannot
//! keep a review alive; a state file that holds the approved plan expires by its own sealed
//! creation time and TTL (apply's pre-flight checks that).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::plan::Action;
use crate::state::State;
use crate::text::{thousands, timestamp};

/// The largest receipt read: one is a few hundred bytes; a bigger file (or a symlink to
/// `/dev/zero`) is refused without being read.
pub const MAX_RECEIPT_BYTES: u64 = 1 << 20;

/// The receipt format: major.minor (minor = additive, major = breaking).
pub const RECEIPT_FORMAT_VERSION: &str = "1.0";

/// A receipt as written to and read from `NAME.receipt.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// [`RECEIPT_FORMAT_VERSION`].
    pub format_version: String,
    /// The plan digest, `sha256:<64 hex>`.
    pub digest: String,
    /// The Unify space id.
    pub space: String,
    /// The manifest's region (`us`/`eu`).
    pub region: String,
    /// `scheme://host:port` the plan was resolved against.
    pub api: String,
    /// The manifest: its file name beside the receipt, and its sha256.
    pub manifest: FileHash,
    /// The pinned CSV sources, as written in the manifest, with their sha256.
    pub pinned_sources: Vec<FileHash>,
    /// Counts of the plan.
    pub counts: ReceiptCounts,
    /// When the plan was made (RFC 3339, UTC).
    pub created_at: String,
    /// When the plan stops being appliable (its TTL; RFC 3339, UTC).
    pub expires_at: String,
}

/// A file and its hex sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// The path (relative, as the manifest or the receipt names it).
    pub path: String,
    /// Hex sha256 of its bytes.
    pub sha256: String,
}

/// Counts of a plan by action and by identifier type, without any value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCounts {
    /// Items per action (every action present, zeros included).
    pub by_action: BTreeMap<String, u64>,
    /// Items per identifier type, then per action.
    pub by_type: BTreeMap<String, BTreeMap<String, u64>>,
    /// Distinct profiles with a `delete` item.
    pub delete_profiles: u64,
}

impl ReceiptCounts {
    /// Reads the counts of a state file.
    pub fn of(state: &State) -> anyhow::Result<Self> {
        let counts = state.counts()?;
        let by_action = Action::ALL
            .iter()
            .map(|a| (a.as_str().to_owned(), counts.action(*a)))
            .collect();
        let by_type = state.counts_by_type_and_action()?;
        Ok(Self {
            by_action,
            by_type,
            delete_profiles: counts.delete_profiles,
        })
    }

    /// Rows `(label, count)`: every action in display order, the profiles, then one row per
    /// (type, action) in type order.
    fn rows(&self) -> Vec<(String, u64)> {
        let mut rows: Vec<(String, u64)> = Action::ALL
            .iter()
            .map(|a| {
                (
                    a.as_str().to_owned(),
                    self.by_action.get(a.as_str()).copied().unwrap_or(0),
                )
            })
            .collect();
        rows.push(("profiles losing identifiers".into(), self.delete_profiles));
        for (kind, actions) in &self.by_type {
            for a in Action::ALL {
                if let Some(n) = actions.get(a.as_str()) {
                    rows.push((format!("{} {}", crate::text::clean(kind), a.as_str()), *n));
                }
            }
        }
        rows
    }
}

/// The counts of two plans side by side, one row per action and per (type, action), the rows
/// that differ marked `*`: what a reviewer needs to see when a plan drifted.
pub fn side_by_side(
    approved_label: &str,
    approved: &ReceiptCounts,
    fresh: &ReceiptCounts,
) -> String {
    let a = approved.rows();
    let f = fresh.rows();
    // The approved rows in their order, then the fresh plan's new type rows.
    let mut labels: Vec<&String> = a.iter().map(|(l, _)| l).collect();
    for (l, _) in &f {
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let get = |rows: &[(String, u64)], label: &str| {
        rows.iter().find(|(l, _)| l == label).map_or(0, |(_, n)| *n)
    };
    let width = labels.iter().map(|l| l.len()).max().unwrap_or(0).max(8);
    let mut out = format!(
        "  {:<width$}  {approved_label:>12}  {:>12}\n",
        "", "fresh plan"
    );
    for label in labels {
        let (x, y) = (get(&a, label), get(&f, label));
        out.push_str(&format!(
            "{} {label:<width$}  {:>12}  {:>12}\n",
            if x == y { ' ' } else { '*' },
            thousands(x),
            thousands(y),
        ));
    }
    out
}

/// The share of profile lookups above which a plan is suspicious: more than half of them found
/// no profile (an upper-case lookup type, a wrong space id, the EU space with the US host).
pub const SUSPICIOUS_SHARE_PERCENT: u64 = 50;
/// The fewest unresolved lookups that make a plan suspicious.
pub const SUSPICIOUS_MIN: u64 = 1;

/// How many of a plan's distinct profile lookups found no profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// Distinct lookups that found no profile.
    pub unresolved: u64,
    /// Distinct lookups in all.
    pub lookups: u64,
    /// Of the unresolved, those whose lookup type has upper-case letters (Segment's types are
    /// lowercase: an export's `SEGMENT_ID` header taken for the type).
    pub upper_case_types: u64,
}

impl Unresolved {
    /// Counts the lookups of a state file.
    pub fn of(state: &State) -> anyhow::Result<Self> {
        let (unresolved, lookups, upper_case_types) = state.lookup_counts()?;
        Ok(Self {
            unresolved,
            lookups,
            upper_case_types,
        })
    }

    /// The likely cause, to print after "N of M profile lookups found no profile." (our own
    /// text, no value in it, so the markdown view prints it unescaped): the
    /// upper-case lookup types when there are some, else the space, the region or the age
    /// of the data the manifest came from.
    pub fn cause(&self) -> String {
        if self.upper_case_types > 0 {
            format!(
                "{} of them have an upper-case lookup type, and Segment's types are lowercase (`segment_id`, not `SEGMENT_ID`): name the type in lower case in the manifest (CSV headers match in any case), then plan again.",
                crate::render::thousands(self.upper_case_types)
            )
        } else {
            "Check the space id and the region (the EU space with the US host: region, --api-url, IDPRUNE_API_URL), and how old the data the manifest came from is (a profile merged or deleted since an export is not found).".to_owned()
        }
    }

    /// True when most lookups found no profile: more than [`SUSPICIOUS_SHARE_PERCENT`] % of
    /// them, and at least [`SUSPICIOUS_MIN`].
    pub fn suspicious(&self) -> bool {
        self.unresolved >= SUSPICIOUS_MIN
            && self.unresolved * 100 > self.lookups * SUSPICIOUS_SHARE_PERCENT
    }
}

/// How far in the future a receipt's `created_at` may lie: clocks of the laptop that wrote
/// it and of the runner that checks it differ a little.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// The receipt path of a manifest: `plans/x.yaml` → `plans/x.receipt.json`.
pub fn receipt_path(manifest: &Path) -> PathBuf {
    manifest.with_extension("receipt.json")
}

impl Receipt {
    /// The receipt of a sealed state file; `manifest_name` is the manifest's path as the
    /// receipt names it (beside the receipt: its file name).
    pub fn of(state: &State, manifest_name: &str) -> anyhow::Result<Self> {
        let meta = state.meta()?;
        let pinned_sources = state
            .sources()?
            .into_iter()
            .filter(|s| s.pinned)
            .map(|s| FileHash {
                path: s.written,
                sha256: s.sha256,
            })
            .collect();
        let expires = meta
            .created_at
            .saturating_add(i64::try_from(meta.ttl_secs).unwrap_or(i64::MAX));
        Ok(Self {
            format_version: RECEIPT_FORMAT_VERSION.to_owned(),
            digest: meta.digest,
            space: meta.space,
            region: meta.region,
            api: meta.api_origin,
            manifest: FileHash {
                path: manifest_name.to_owned(),
                sha256: meta.manifest_sha256,
            },
            pinned_sources,
            counts: ReceiptCounts::of(state)?,
            created_at: timestamp(meta.created_at),
            expires_at: timestamp(expires),
        })
    }

    /// Writes the receipt as pretty JSON, replacing the file atomically.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        (|| -> anyhow::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            Ok(())
        })()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing receipt `{}`", path.display()))
    }

    /// Reads a receipt; refuses one of a newer major format.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = crate::bounded::read_regular_text(path, "receipt", MAX_RECEIPT_BYTES)
            .context("write a receipt with `idprune plan MANIFEST --receipt`")?;
        let receipt: Receipt = serde_json::from_str(&text).with_context(|| {
            format!(
                "receipt `{}` is not an idprune receipt; write it again with `idprune plan MANIFEST --receipt`",
                path.display()
            )
        })?;
        let major = receipt.format_version.split('.').next().unwrap_or("");
        let ours = RECEIPT_FORMAT_VERSION.split('.').next().unwrap_or("");
        if major != ours {
            anyhow::bail!(
                "receipt `{}` has format {}, which this idprune (format {RECEIPT_FORMAT_VERSION}) does not read; upgrade idprune",
                path.display(),
                crate::text::clean(&receipt.format_version)
            );
        }
        Ok(receipt)
    }

    /// True when the receipt's `expires_at` has passed (or cannot be read).
    pub fn expired(&self) -> bool {
        match humantime::parse_rfc3339(&self.expires_at) {
            Ok(t) => t < std::time::SystemTime::now(),
            Err(_) => true,
        }
    }

    /// Why this receipt does not name the plan `fresh` (a receipt made from a sealed plan,
    /// [`Receipt::of`]), one reason a line; empty when it does. Every field a receipt shows is
    /// compared; the times by [`Receipt::time_problems`].
    pub fn mismatches(&self, fresh: &Receipt) -> Vec<String> {
        let clean = crate::text::clean;
        let mut why = Vec::new();
        if self.format_version != fresh.format_version {
            why.push(format!(
                "format: receipt {}, fresh plan {}",
                clean(&self.format_version),
                fresh.format_version
            ));
        }
        if self.space != fresh.space {
            why.push(format!(
                "space: receipt `{}`, fresh plan `{}`",
                clean(&self.space),
                clean(&fresh.space)
            ));
        }
        if self.region != fresh.region {
            why.push(format!(
                "region: receipt `{}`, fresh plan `{}`",
                clean(&self.region),
                clean(&fresh.region)
            ));
        }
        if self.api != fresh.api {
            why.push(format!(
                "API: receipt {}, fresh plan {}",
                clean(&self.api),
                clean(&fresh.api)
            ));
        }
        if self.manifest.sha256 != fresh.manifest.sha256 {
            why.push("the manifest changed since the receipt was written".into());
        }
        if self.manifest.path != fresh.manifest.path {
            why.push(format!(
                "manifest: receipt `{}`, fresh plan `{}`",
                clean(&self.manifest.path),
                clean(&fresh.manifest.path)
            ));
        }
        if self.pinned_sources != fresh.pinned_sources {
            why.push("a pinned CSV source changed since the receipt was written".into());
        }
        if self.digest != fresh.digest {
            why.push(format!(
                "digest: receipt {}, fresh plan {}",
                clean(&self.digest),
                fresh.digest
            ));
        } else if self.counts != fresh.counts {
            // The same digest means the same items, so the same counts: these were edited.
            why.push(
                "counts: the receipt's counts are not those of its own digest's plan (edited?); see the table"
                    .into(),
            );
        }
        why.extend(self.time_problems(fresh, std::time::SystemTime::now()));
        why
    }

    /// Why this receipt's times cannot be those of a plan like `sealed` (a receipt made from a
    /// sealed plan), at `now`: unreadable, created in the future (beyond
    /// [`CLOCK_SKEW_SECS`]), or a span longer than the sealed plan's TTL — an `expires_at`
    /// moved later by hand.
    pub fn time_problems(&self, sealed: &Receipt, now: std::time::SystemTime) -> Vec<String> {
        let clean = crate::text::clean;
        let parse = |t: &str| humantime::parse_rfc3339(t).ok();
        let (Some(created), Some(expires)) = (parse(&self.created_at), parse(&self.expires_at))
        else {
            return vec![format!(
                "times: the receipt's created_at `{}` / expires_at `{}` are not RFC 3339 times",
                clean(&self.created_at),
                clean(&self.expires_at)
            )];
        };
        let mut why = Vec::new();
        if created > now + std::time::Duration::from_secs(CLOCK_SKEW_SECS) {
            why.push(format!(
                "times: the receipt was created at {}, in the future",
                clean(&self.created_at)
            ));
        }
        let span = |c: std::time::SystemTime, e: std::time::SystemTime| {
            e.duration_since(c).unwrap_or_default()
        };
        let ttl = match (parse(&sealed.created_at), parse(&sealed.expires_at)) {
            (Some(c), Some(e)) => span(c, e),
            _ => std::time::Duration::ZERO,
        };
        if span(created, expires) > ttl {
            why.push(format!(
                "times: the receipt's expiry {} is more than the sealed plan's TTL ({}) after its creation {}; expiry comes from the sealed plan, so plan with the same --ttl",
                clean(&self.expires_at),
                humantime::format_duration(ttl),
                clean(&self.created_at)
            ));
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(delete: u64, absent: u64) -> ReceiptCounts {
        let mut c = ReceiptCounts::default();
        c.by_action.insert("delete".into(), delete);
        c.by_action.insert("absent".into(), absent);
        c.by_type
            .entry("email".into())
            .or_default()
            .insert("delete".into(), delete);
        c.delete_profiles = delete;
        c
    }

    #[test]
    fn side_by_side_marks_the_rows_that_differ() {
        let table = side_by_side("receipt", &counts(3, 1), &counts(2, 2));
        let line = |label: &str| {
            table
                .lines()
                .find(|l| l[2..].starts_with(label))
                .unwrap_or_else(|| panic!("no row {label} in\n{table}"))
                .to_owned()
        };
        assert!(line("delete").starts_with('*'), "{table}");
        assert!(line("absent").starts_with('*'), "{table}");
        assert!(line("blocked").starts_with(' '), "{table}");
        assert!(line("email delete").contains('3'), "{table}");
        assert_eq!(
            side_by_side("r", &counts(1, 1), &counts(1, 1))
                .lines()
                .filter(|l| l.starts_with('*'))
                .count(),
            0
        );
    }

    #[test]
    fn most_means_more_than_half() {
        let u = |unresolved, lookups| {
            Unresolved {
                unresolved,
                lookups,
                upper_case_types: 0,
            }
            .suspicious()
        };
        assert!(u(1, 1));
        assert!(u(3, 5));
        assert!(!u(1, 2));
        assert!(!u(0, 0));
        assert!(!u(2, 18));
    }

    #[test]
    fn receipt_paths_sit_beside_the_manifest() {
        assert_eq!(
            receipt_path(Path::new("plans/2026-11-x.yaml")),
            PathBuf::from("plans/2026-11-x.receipt.json")
        );
    }

    #[test]
    fn mismatch_names_the_digest_only_when_it_differs() {
        let r = Receipt {
            format_version: RECEIPT_FORMAT_VERSION.into(),
            digest: "sha256:aa".into(),
            space: "spa".into(),
            region: "us".into(),
            api: "https://profiles.segment.com:443".into(),
            manifest: FileHash {
                path: "x.yaml".into(),
                sha256: "00".into(),
            },
            pinned_sources: vec![],
            counts: counts(1, 0),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-08T00:00:00Z".into(),
        };
        let mut later = r.clone();
        later.created_at = "2026-01-02T00:00:00Z".into();
        later.expires_at = "2026-01-09T00:00:00Z".into();
        assert!(
            r.mismatches(&later).is_empty(),
            "later times with the same span match"
        );
        let mut stretched = r.clone();
        stretched.expires_at = "2999-01-01T00:00:00Z".into();
        assert_eq!(stretched.mismatches(&later).len(), 1, "a stretched expiry");
        let mut shortened = r.clone();
        shortened.expires_at = "2026-01-02T00:00:00Z".into();
        assert!(
            shortened.mismatches(&later).is_empty(),
            "a shorter life is fine"
        );
        let mut future = r.clone();
        future.created_at = "2999-01-01T00:00:00Z".into();
        future.expires_at = "2999-01-08T00:00:00Z".into();
        assert_eq!(future.mismatches(&later).len(), 1, "created in the future");
        let mut edited = r.clone();
        edited.counts = counts(9, 0);
        assert_eq!(edited.mismatches(&later).len(), 1, "counts of another plan");
        let mut region = r.clone();
        region.region = "eu".into();
        assert_eq!(region.mismatches(&later).len(), 1, "another region");
        assert!(r.expired(), "2026-01-08 is past");
        let mut fresh = r.clone();
        fresh.expires_at = "2999-01-01T00:00:00Z".into();
        assert!(!fresh.expired());
        later.digest = "sha256:bb".into();
        assert_eq!(r.mismatches(&later).len(), 1);
    }
}
