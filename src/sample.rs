//! `plan --refresh=false --sample N`: the sampled check of a zero-read plan. The plan seals
//! its unverified deletes without reading a profile; then N of their profiles, drawn at
//! random, are read by `user_id` (never by the identifier: an email never goes into a
//! request path) and compared with the items sealed for them. A profile has drifted when it
//! is gone (404) or lacks an identifier the plan deletes from it. The result (sample size,
//! drifted profiles, the rate and its Wilson 95 % upper bound, the threshold) is sealed into
//! the plan's `meta` under [`META_KEY`], inside the file seal, and shown by every view.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::Identifier;
use crate::plan::Resolution;

/// The `meta` key the sample's result is sealed under (a JSON [`Sample`]).
pub const META_KEY: &str = "sample";

/// The default `--max-drift`, in percent.
pub const DEFAULT_MAX_DRIFT_PERCENT: f64 = 2.0;

/// A sampled check's result, as sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Profiles asked for (`--sample N`).
    pub asked: u64,
    /// Profiles read (fewer when the plan has fewer unverified profiles).
    pub read: u64,
    /// Of those, profiles that drifted: gone, or lacking an identifier the plan deletes.
    pub drifted: u64,
    /// Of the drifted, those whose user_id found no profile.
    pub gone: u64,
    /// The drift threshold, in percent (`--max-drift`).
    pub max_drift_percent: f64,
    /// True when `--allow-drift` accepted a drift above the threshold.
    pub allowed: bool,
}

impl Sample {
    /// The observed drift rate, in percent.
    pub fn rate_percent(&self) -> f64 {
        if self.read == 0 {
            0.0
        } else {
            100.0 * self.drifted as f64 / self.read as f64
        }
    }

    /// The Wilson score 95 % upper bound of the drift rate, in percent.
    pub fn upper_percent(&self) -> f64 {
        wilson_upper(self.drifted, self.read) * 100.0
    }

    /// True when the observed rate is above the threshold.
    pub fn over(&self) -> bool {
        self.rate_percent() > self.max_drift_percent
    }

    /// One line for every view.
    pub fn line(&self) -> String {
        format!(
            "Sampled check: {} of {} sampled profiles drifted ({:.1} %, 95 % upper bound {:.1} %; {} gone), threshold {:.1} %{}.",
            self.drifted,
            self.read,
            self.rate_percent(),
            self.upper_percent(),
            self.gone,
            self.max_drift_percent,
            if self.over() {
                if self.allowed {
                    ": above it, accepted with --allow-drift"
                } else {
                    ": ABOVE IT"
                }
            } else {
                ""
            }
        )
    }
}

/// The Wilson score interval's upper end at 95 % (z = 1.96) for `k` of `n`.
pub fn wilson_upper(k: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let (k, n) = (k as f64, n as f64);
    let z = 1.959_963_984_540_054_f64;
    let p = k / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre + spread) / (1.0 + z2 / n)).min(1.0)
}

/// Parses `--max-drift`: a percentage, `2%` or `2`, from 0 to 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is not a percentage from 0 to 100; write it like `2%`"
        )),
    }
}

/// Counts the drifted profiles of a sample: `sealed` holds, per sampled user_id, the
/// identifiers the plan deletes from it; `read` what reading each by user_id found.
pub fn compare(
    sealed: &BTreeMap<String, BTreeSet<Identifier>>,
    read: &BTreeMap<String, Resolution>,
) -> (u64, u64) {
    let (mut drifted, mut gone) = (0, 0);
    for (user_id, wanted) in sealed {
        match read.get(user_id) {
            Some(Resolution::Found(ids)) => {
                let have: BTreeSet<&Identifier> = ids.iter().collect();
                if wanted.iter().any(|w| !have.contains(w)) {
                    drifted += 1;
                }
            }
            Some(Resolution::NotFound) | None => {
                drifted += 1;
                gone += 1;
            }
        }
    }
    (drifted, gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_bound_is_wilsons() {
        // 0 of 100: 3.7 %; 5 of 100: 11.2 %; all: 100 %.
        assert!((wilson_upper(0, 100) - 0.0370).abs() < 0.0005);
        assert!((wilson_upper(5, 100) - 0.1118).abs() < 0.0005);
        assert!((wilson_upper(100, 100) - 1.0).abs() < 1e-9);
        assert_eq!(wilson_upper(0, 0), 1.0);
    }

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        assert_eq!(parse_percent("2%"), Ok(2.0));
        assert_eq!(parse_percent("0.5"), Ok(0.5));
        assert!(parse_percent("120%").is_err());
        assert!(parse_percent("two").is_err());
    }

    #[test]
    fn a_profile_drifts_when_gone_or_missing_an_identifier() {
        let id = |s: &str| Identifier::parse(s).expect("id");
        let sealed = BTreeMap::from([
            ("u1".to_owned(), BTreeSet::from([id("email:a@x.com")])),
            ("u2".to_owned(), BTreeSet::from([id("email:b@x.com")])),
            ("u3".to_owned(), BTreeSet::from([id("email:c@x.com")])),
        ]);
        let read = BTreeMap::from([
            (
                "u1".to_owned(),
                Resolution::Found(vec![id("user_id:u1"), id("email:a@x.com")]),
            ),
            ("u2".to_owned(), Resolution::Found(vec![id("user_id:u2")])),
            ("u3".to_owned(), Resolution::NotFound),
        ]);
        assert_eq!(compare(&sealed, &read), (2, 1));
        let s = Sample {
            asked: 3,
            read: 3,
            drifted: 2,
            gone: 1,
            max_drift_percent: 2.0,
            allowed: false,
        };
        assert!(s.over());
        assert!(
            s.line().contains("2 of 3 sampled profiles drifted"),
            "{}",
            s.line()
        );
    }
}
