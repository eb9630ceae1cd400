//! The emulated Segment space ([`Space`]): its profiles and identifier index, its rate limits,
//! its propagation window and its counters, and Segment's decisions over them. Every method
//! takes `now` instead of reading a clock and returns a [`Reply`]; nothing here does I/O, sleeps
//! or injects faults (that is `server.rs`).
//!
//! This file holds [`Space`] itself, its [`Options`], building it from a seed, the token and
//! the space limit. The rest, one job a file: `profiles` (stored profiles, the lookup index,
//! the ghosts of the propagation window), `read` (`GET .../external_ids` and its cursors),
//! `delete` (the delete endpoint's checks and guard rails in Segment's order, then the
//! deletion), `stats` (counters, logs and arrival times), `admin` (the JSON bodies of
//! `/__emulator/*`), `rebuild` (`POST /__emulator/rebuild`).

mod admin;
mod delete;
mod profiles;
mod read;
mod rebuild;
mod stats;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bucket::ProfileBuckets;
use super::limiter::{LimiterKind, SpaceLimiter};
use super::reply::Reply;
use super::seed::Seed;
use profiles::{GHOSTS_PRUNE_AT, Ghost, IdEntry, Profile, key};
pub use stats::{Attempt, DeleteTarget, Deleted, Stats};

/// The only collection the emulator serves.
pub const USERS: &str = "users";

/// The behaviour switches a [`Space`] takes from the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// How long a deleted identifier keeps showing in reads.
    pub propagation: Duration,
    /// Answer every delete with 403 `forbidden`.
    pub not_activated: bool,
    /// Requests per second for the space; 0 = unlimited.
    pub space_rate: u32,
    /// How the space limit counts.
    pub limiter: LimiterKind,
    /// Deletes per second per profile; 0 = unlimited.
    pub profile_rate: u32,
    /// Seconds for a `Retry-After` header on 429, if any.
    pub retry_after: Option<u64>,
    /// Deletes answer 200 but remove nothing (a service that does not do what it says).
    pub ineffective_deletes: bool,
    /// A lookup holding an upper-case character finds no profile.
    pub lowercase_lookups: bool,
    /// Identifier types whose deletes answer 400 `unsupported_eid_type`.
    pub unsupported_types: Vec<String>,
}

/// The emulated space, all of the emulator's data: profiles, index, limiters and statistics.
/// The server keeps one behind a lock.
pub struct Space {
    /// The space id requests must name.
    space_id: String,
    token: String,
    profiles: Vec<Profile>,
    by_identifier: HashMap<Arc<str>, u32>,
    by_segment_id: HashMap<Arc<str>, u32>,
    ghosts: HashMap<Arc<str>, Ghost>,
    ghosts_prune_at: usize,
    options: Options,
    space_limiter: Option<SpaceLimiter>,
    profile_buckets: ProfileBuckets,
    started: Instant,
    /// The counters and logs of `/__emulator/stats`.
    pub stats: Stats,
}

impl Space {
    /// Builds the space from a seed, validating it in the same pass (a `Seed` may have been
    /// built without [`Seed::from_json`]).
    pub fn from_seed(
        seed: Seed,
        token: String,
        options: Options,
        now: Instant,
    ) -> anyhow::Result<Space> {
        if u32::try_from(seed.profiles.len()).is_err() {
            anyhow::bail!("the emulator holds at most 2^32 profiles");
        }
        let segment_ids = seed.segment_ids();
        let total: usize = seed.profiles.iter().map(|p| p.identifiers.len()).sum();
        let mut by_identifier: HashMap<Arc<str>, u32> = HashMap::with_capacity(total);
        let mut profiles: Vec<Profile> = seed
            .profiles
            .iter()
            .zip(&segment_ids)
            .map(|(p, id)| Profile {
                segment_id: id.as_str().into(),
                entries: Vec::with_capacity(p.identifiers.len()),
            })
            .collect();
        seed.walk(&segment_ids, |n, kind, id| {
            let key: Arc<str> = key(kind, id).into();
            let n = n as u32; // checked above: fewer than 2^32 profiles
            match by_identifier.entry(Arc::clone(&key)) {
                Entry::Occupied(held) => return Some(*held.get() as usize),
                Entry::Vacant(slot) => {
                    slot.insert(n);
                }
            }
            profiles[n as usize].entries.push(IdEntry {
                key,
                deleted_at: None,
            });
            None
        })?;
        let by_segment_id = profiles
            .iter()
            .enumerate()
            .map(|(n, p)| (Arc::clone(&p.segment_id), n as u32))
            .collect();
        Ok(Space {
            space_id: seed.space,
            token,
            profiles,
            by_identifier,
            by_segment_id,
            ghosts: HashMap::new(),
            ghosts_prune_at: GHOSTS_PRUNE_AT,
            space_limiter: SpaceLimiter::new(
                options.limiter,
                options.space_rate,
                now,
                second_start(now),
            ),
            profile_buckets: ProfileBuckets::new(options.profile_rate),
            started: now,
            options,
            stats: Stats::default(),
        })
    }

    /// True when `token` is the accepted access token.
    pub fn token_matches(&self, token: &str) -> bool {
        !self.token.is_empty() && self.token == token
    }

    /// Replaces the accepted token (to simulate a revoked one).
    pub fn set_token(&mut self, token: String) {
        self.token = token;
    }

    /// Admits one `/v1` request against the space limit; `Err` is the 429 to send.
    pub fn admit(&mut self, now: Instant) -> Result<(), Reply> {
        let Some(limiter) = self.space_limiter.as_mut() else {
            return Ok(());
        };
        let admitted = limiter.try_admit(now);
        let at = now.saturating_duration_since(self.started).as_micros() as u64;
        if admitted {
            self.stats.arrivals.accepted_us.push(at);
            return Ok(());
        }
        self.stats.arrivals.refused_us.push(at);
        let message = format!(
            "Too many requests: the space allows {} requests per second.",
            self.options.space_rate
        );
        Err(self.too_many_requests(message))
    }

    /// Counts a refusal by the space or a profile limit and builds its 429, with
    /// `Retry-After` when the options ask for one.
    fn too_many_requests(&mut self, message: String) -> Reply {
        self.stats.rate_limited += 1;
        let mut reply = Reply::error(429, "rate_limit_error", message);
        reply.retry_after = self.options.retry_after;
        reply
    }
}

/// The instant at or before `now` at which the current wall-clock second began, so fixed
/// windows align to clock seconds as a server's would.
fn second_start(now: Instant) -> Instant {
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Duration::from_nanos(u64::from(d.subsec_nanos())))
        .unwrap_or_default();
    now.checked_sub(into_second).unwrap_or(now)
}

#[cfg(test)]
mod tests;
