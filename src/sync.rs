//! One poison-tolerant lock helper for the whole crate: the data behind idprune's mutexes
//! (a retry budget, a queue cursor, the pacer's state) stays meaningful after a panic in
//! another task, so a poisoned lock is taken over instead of aborting the run.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the guard over from a panicked holder.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
