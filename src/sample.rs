//! `plan --refresh=false --sample N`: the sampled check of a zero-read plan. The plan seals
//! its unverified deletes without reading a profile; then N of their profiles, drawn at
//! random, are read by `user_id` (never by the identifier: an email never goes into a
//! request path) and compared with the items sealed for them. A profile has drifted when it
//! is gone (404) or lacks an identifier the plan deletes from it. The result (sample size,
//! drifted profiles, the rate and its Wilson 95 % upper bound, the threshold) is sealed into
//! the plan's `meta` under [`META_KEY`], inside the file seal, and shown by every view.
//!
//! The check reads in rounds of N. A round that saw drift, yet not above `--max-drift`,
//! leaves the verdict to a profile or two: at a true drift of 5 %, 100 profiles show 2 % or
//! less 12 % of the time. So while drift was seen within the threshold and its upper bound is
//! above it ([`Sample::unsettled`]), the check reads another N, up to [`MAX_ROUNDS`] rounds,
//! and judges them all together. A round with no drift ends it: nothing was seen to weigh,
//! and a fresh warehouse costs N reads, not more.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::Identifier;
use crate::plan::Resolution;

/// The `meta` key the sample's result is sealed under (a JSON [`Sample`]).
pub const META_KEY: &str = "sample";

/// The default `--max-drift`, in percent.
pub const DEFAULT_MAX_DRIFT_PERCENT: f64 = 2.0;

/// The most rounds of N profiles a sampled check reads (see the module docs).
pub const MAX_ROUNDS: u64 = 4;

/// A sampled profile: its user_id and the identifiers the plan deletes from it.
pub type Target = (String, BTreeSet<Identifier>);

/// A sampled check's result, as sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Profiles asked for (`--sample N`).
    pub asked: u64,
    /// Profiles read: N a round (fewer when the plan has fewer unverified profiles).
    pub read: u64,
    /// Rounds read (plans sealed before rounds read one).
    #[serde(default = "one_round")]
    pub rounds: u64,
    /// Of those, profiles that drifted: gone, or lacking an identifier the plan deletes.
    pub drifted: u64,
    /// Of the drifted, those whose user_id found no profile.
    pub gone: u64,
    /// The drift threshold, in percent (`--max-drift`).
    pub max_drift_percent: f64,
    /// True when `--allow-drift` accepted a drift above the threshold.
    pub allowed: bool,
}

fn one_round() -> u64 {
    1
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

    /// True when the observed rate (the point estimate, not its upper bound) is above the
    /// threshold. A rate equal to it passes.
    ///
    /// Why the point estimate: the upper bound of a clean sample is 3.7 % at 100 profiles
    /// and falls below the default 2 % only from 189 profiles, so judging the bound would
    /// refuse every `--sample 100` plan of a perfectly fresh warehouse. The bound is shown
    /// beside the rate, and [`Sample::bound_note`] says when it is above the threshold.
    pub fn over(&self) -> bool {
        self.rate_percent() > self.max_drift_percent
    }

    /// True when the verdict hangs on a profile or two: drift was seen, the observed rate is
    /// within the threshold, and its upper bound is above it. The check then reads another
    /// round (see the module docs).
    pub fn unsettled(&self) -> bool {
        self.drifted > 0 && !self.over() && self.upper_percent() > self.max_drift_percent
    }

    /// True when the check reads another round: none read yet, or the verdict is unsettled
    /// and fewer than [`MAX_ROUNDS`] were read.
    pub fn wants_another_round(&self) -> bool {
        self.rounds == 0 || (self.rounds < MAX_ROUNDS && self.unsettled())
    }

    /// Adds a round's count: `read` profiles, `drifted` of them drifted, `gone` of those gone.
    pub fn add_round(&mut self, read: u64, drifted: u64, gone: u64) {
        self.read += read;
        self.drifted += drifted;
        self.gone += gone;
        self.rounds += 1;
    }

    /// One line for every view: the observed rate, its upper bound, and the verdict on the
    /// observed rate.
    pub fn line(&self) -> String {
        let rounds = if self.rounds > 1 {
            format!(
                "; read in {} rounds of {}, as drift was seen within the threshold",
                self.rounds, self.asked
            )
        } else {
            String::new()
        };
        format!(
            "Sampled check: {} of {} sampled profiles drifted ({:.1} % observed, 95 % upper bound {:.1} %; {} gone{rounds}); --max-drift {} judges the observed rate: {}.",
            self.drifted,
            self.read,
            self.rate_percent(),
            self.upper_percent(),
            self.gone,
            percent_text(self.max_drift_percent),
            if self.over() {
                if self.allowed {
                    "above it, accepted with --allow-drift"
                } else {
                    "ABOVE IT"
                }
            } else {
                "within it"
            }
        )
    }

    /// When the observed rate passes but its upper bound is above the threshold: a sentence
    /// saying the sample is too small to rule that much drift out, and the sample that would.
    pub fn bound_note(&self) -> Option<String> {
        if self.over() || self.upper_percent() <= self.max_drift_percent {
            return None;
        }
        let clean = clean_sample_for(self.max_drift_percent).map_or_else(String::new, |n| {
            format!("; a sample of {n} with none drifted would")
        });
        Some(format!(
            "The sample of {} cannot rule out a drift above {} (its 95 % upper bound is {:.1} %){clean}.",
            self.read,
            percent_text(self.max_drift_percent),
            self.upper_percent()
        ))
    }
}

/// A percentage as `--max-drift` takes it: `2%`, `0.5%`.
pub fn percent_text(p: f64) -> String {
    format!("{}%", (p * 1000.0).round() / 1000.0)
}

/// The smallest sample whose 95 % upper bound, with no profile drifted, is at most
/// `max_percent` (`None` at 0 %, which no sample reaches).
pub fn clean_sample_for(max_percent: f64) -> Option<u64> {
    if max_percent <= 0.0 {
        return None;
    }
    let p = max_percent / 100.0;
    let z2 = 1.959_963_984_540_054_f64.powi(2);
    // wilson_upper(0, n) = z² / (n + z²); solved for n, then checked against the function.
    let mut n = (z2 * (1.0 - p) / p).ceil().max(1.0) as u64;
    while n > 1 && wilson_upper(0, n - 1) * 100.0 <= max_percent {
        n -= 1;
    }
    while wilson_upper(0, n) * 100.0 > max_percent {
        n += 1;
    }
    Some(n)
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

/// Counts the drifted profiles of a round: `sealed` holds, per sampled user_id, the
/// identifiers the plan deletes from it; `read` what reading each by user_id found.
pub fn compare(sealed: &[Target], read: &BTreeMap<String, Resolution>) -> (u64, u64) {
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
        let sealed = [
            ("u1".to_owned(), BTreeSet::from([id("email:a@x.com")])),
            ("u2".to_owned(), BTreeSet::from([id("email:b@x.com")])),
            ("u3".to_owned(), BTreeSet::from([id("email:c@x.com")])),
        ];
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
            rounds: 1,
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

    fn sample(drifted: u64, read: u64, max: f64) -> Sample {
        Sample {
            asked: read,
            read,
            rounds: 1,
            drifted,
            gone: 0,
            max_drift_percent: max,
            allowed: false,
        }
    }

    #[test]
    fn max_drift_judges_the_observed_rate_and_a_rate_equal_to_it_passes() {
        // 2 of 100 is 2 %: at the threshold, within it, though its upper bound is 7.0 %.
        let at = sample(2, 100, 2.0);
        assert!(!at.over());
        assert!(at.upper_percent() > 2.0);
        assert!(
            at.line().contains("judges the observed rate: within it"),
            "{}",
            at.line()
        );
        // One more drifted profile is above it.
        let above = sample(3, 100, 2.0);
        assert!(above.over());
        assert!(above.line().ends_with("ABOVE IT."), "{}", above.line());
        // The same boundary at another size and threshold: 1 of 50 is 2 %.
        assert!(!sample(1, 50, 2.0).over());
        assert!(sample(1, 50, 1.99).over());
        // --max-drift 0%: any drift is above it.
        assert!(!sample(0, 100, 0.0).over());
        assert!(sample(1, 100, 0.0).over());
    }

    #[test]
    fn a_passing_sample_whose_bound_is_above_the_threshold_says_so() {
        let clean = sample(0, 100, 2.0);
        let note = clean.bound_note().expect("3.7 % > 2 %");
        assert!(note.contains("cannot rule out a drift above 2%"), "{note}");
        assert!(
            note.contains("a sample of 189 with none drifted would"),
            "{note}"
        );
        // 189 clean profiles bound it at or below 2 %, 188 do not.
        assert!(wilson_upper(0, 189) * 100.0 <= 2.0);
        assert!(wilson_upper(0, 188) * 100.0 > 2.0);
        assert_eq!(sample(0, 189, 2.0).bound_note(), None);
        // A refused sample needs no such note; at 0 % no clean sample is enough.
        assert_eq!(sample(5, 100, 2.0).bound_note(), None);
        assert_eq!(clean_sample_for(0.0), None);
        assert_eq!(clean_sample_for(5.0), Some(73));
    }

    #[test]
    fn a_round_that_saw_drift_within_the_threshold_is_unsettled() {
        // No drift seen: settled, however small the sample (nothing to weigh).
        assert!(!sample(0, 100, 2.0).unsettled());
        // 1 or 2 of 100 at 2 %: within it, its bound above it: read another round.
        assert!(sample(1, 100, 2.0).unsettled());
        assert!(sample(2, 100, 2.0).unsettled());
        // Above the threshold: settled (refused).
        assert!(!sample(3, 100, 2.0).unsettled());
        // Within the threshold and bounded below it: settled (2 of 1,000 at 2 %: 0.2 %,
        // bound 0.7 %).
        assert!(!sample(2, 1_000, 2.0).unsettled());
        // The line says when more than one round was read.
        let mut read_on = sample(5, 400, 2.0);
        read_on.asked = 100;
        read_on.rounds = 4;
        assert!(
            read_on
                .line()
                .contains("read in 4 rounds of 100, as drift was seen within the threshold"),
            "{}",
            read_on.line()
        );
        assert!(!sample(1, 100, 2.0).line().contains("rounds"));
    }

    #[test]
    fn a_sample_sealed_before_rounds_reads_as_one_round() {
        let old = r#"{"asked":100,"read":100,"drifted":0,"gone":0,"max_drift_percent":2.0,"allowed":false}"#;
        let s: Sample = serde_json::from_str(old).expect("an older sample parses");
        assert_eq!(s.rounds, 1);
    }

    /// The rule, simulated with a fixed seed: 5,000 profiles, rounds of 100, `--max-drift 2%`,
    /// 4,000 draws a drift. Returns (refused after the first round, refused in the end,
    /// profiles read in all).
    fn simulate(stale: usize) -> (u64, u64, u64) {
        use rand::SeedableRng as _;
        use rand::seq::SliceRandom as _;
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let mut population: Vec<bool> = (0..5_000).map(|i| i < stale).collect();
        let (mut first, mut last, mut reads) = (0, 0, 0);
        for _ in 0..4_000 {
            let (drawn, _) = population.partial_shuffle(&mut rng, 100 * MAX_ROUNDS as usize);
            let mut s = sample(0, 0, 2.0);
            s.asked = 100;
            s.rounds = 0;
            for round in drawn.chunks(100) {
                if !s.wants_another_round() {
                    break;
                }
                let drifted = round.iter().filter(|d| **d).count() as u64;
                s.add_round(round.len() as u64, drifted, 0);
                if s.rounds == 1 {
                    first += u64::from(s.over());
                }
            }
            last += u64::from(s.over());
            reads += s.read;
        }
        (first, last, reads)
    }

    #[test]
    fn rounds_catch_a_five_percent_drift_that_one_round_of_100_misses() {
        // 5 %: one round refuses ~88 % (binomial: P(more than 2 of 100)); the rounds ~99 %.
        let (first, last, _) = simulate(250);
        assert!((3_400..3_640).contains(&first), "{first} of 4,000");
        assert!(last >= 3_940, "{last} of 4,000");
        // 1 %, within the default: refused about as rarely as by one round (~8 % → ~11 %).
        let (first, last, reads) = simulate(50);
        assert!(first < 400 && last < 560, "{first} / {last} of 4,000");
        assert!(reads < 4_000 * 300, "{reads}");
        // A fresh warehouse: never refused, one round each.
        assert_eq!(simulate(0), (0, 0, 4_000 * 100));
    }
}
