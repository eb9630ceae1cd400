//! Segment's Profile API, as idprune uses it: the `external_ids` read (with cursor pagination) and
//! the Delete Profile Identifier call. This is the only module that speaks HTTP to Segment. It owns
//! the path encoding ([`path`]), the classification of responses into what the caller must decide
//! on ([`classify`]), and the HTTP client with its auth header and pacing ([`client`]).
//!
//! It knows nothing of plans or journals: callers get a [`Reply`] and decide what to do with it.
//! Retries live with the callers (a pure policy in [`crate::retry`]), so this module never sleeps
//! except to wait for the rate limiter.

pub mod classify;
pub mod client;
pub mod path;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{Identifier, Lookup};
use crate::pace::Pacer;

pub use client::{Client, ClientOptions};

/// The largest page Segment serves from `external_ids` without throttling (segment-docs PR #3091).
pub const EXTERNAL_IDS_PAGE_LIMIT: u32 = 25;

/// The most bytes idprune reads of one `external_ids` page: a page of 25 identifiers, each at
/// most a few hundred bytes, is a few kilobytes; 1 MiB leaves room for any honest page and
/// bounds what a hostile or broken server costs.
pub const MAX_PAGE_BODY: usize = 1 << 20;

/// The most bytes idprune reads of the answer to one delete call (an empty object or an
/// error envelope).
pub const MAX_DELETE_BODY: usize = 64 << 10;

/// The most identifiers idprune accepts for one profile: Segment documents at most 1,000
/// identity mappings per profile; the margin allows for a few added while it is read.
pub const MAX_IDS_PER_PROFILE: usize = 1_100;

/// A request that did not end in an answer the caller can use, classified by what to do next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Worth retrying later: 429, 5xx, a timeout, a reset connection, a malformed body.
    #[error("{reason}")]
    Retryable {
        /// What happened, for the journal (never holds the token).
        reason: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// True for 429 (the caller slows down), false for other transient faults.
        throttled: bool,
    },
    /// The process is stopping (a signal halted the pacer): the request was not sent, or
    /// (`sent`) it was on the wire and got no answer within the grace, so it may have landed.
    #[error("{}", if *sent { "stopping: no answer within the grace" } else { "stopping: not sent" })]
    Stopped {
        /// True when the request had left: its outcome is unknown.
        sent: bool,
    },
    /// A fault of the whole space (401, 403, 404 `source_id_not_found`): stop the run.
    #[error("{status} {code}: {message}")]
    Space {
        /// HTTP status.
        status: u16,
        /// Segment's error code.
        code: String,
        /// Segment's error message.
        message: String,
    },
    /// A permanent refusal of this one request (400, unexpected 4xx).
    #[error("{status} {code}: {message}")]
    Permanent {
        /// HTTP status.
        status: u16,
        /// Segment's error code.
        code: String,
        /// Segment's error message.
        message: String,
    },
}

/// The answer to one request: the classified result plus what the journal keeps.
#[derive(Clone, Debug)]
pub struct Reply<T> {
    /// The classified outcome.
    pub result: Result<T, Fault>,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Segment's `Request-Id` header, for support tickets.
    pub request_id: Option<String>,
    /// How long the exchange took, waiting for the pacer excluded.
    pub elapsed: Duration,
}

/// A successful delete call, or a 404 that tells the caller something about its item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// 200: the identifier was removed.
    Deleted,
    /// 404 `eid_not_found`: the profile does not carry it (anymore).
    IdentifierNotFound,
    /// 404 `not_found`: the profile itself is gone or merged away.
    ProfileNotFound,
}

/// One page of a profile's external ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadPage {
    /// 200: these identifiers, and the cursor to the next page when there is one.
    Found {
        /// The identifiers on this page, in the API's order.
        ids: Vec<Identifier>,
        /// The `next` cursor when `has_more` was true.
        next: Option<String>,
    },
    /// 404 `not_found`: no profile for the lookup.
    NotFound,
}

/// The two calls the rest of idprune needs. The executor and the resolver are written against
/// this trait, so unit tests use an in-memory fake and integration tests use [`Client`] against
/// the emulator.
pub trait ProfileApi: Send + Sync + 'static {
    /// Reads one page of `external_ids` for `lookup`, starting at `cursor`.
    fn external_ids_page(
        &self,
        lookup: &Lookup,
        cursor: Option<&str>,
    ) -> impl Future<Output = Reply<ReadPage>> + Send;

    /// Deletes `identifier` from the profile addressed by `user_id`.
    fn delete(
        &self,
        user_id: &str,
        identifier: &Identifier,
    ) -> impl Future<Output = Reply<DeleteOutcome>> + Send;

    /// The pacer every request of this API waits on, when it has one: the resolver and the
    /// executor size their in-flight window to its current rate, and a stop halts it so no
    /// request starts after. In-memory fakes have none.
    fn pacer(&self) -> Option<&Arc<Pacer>> {
        None
    }
}
