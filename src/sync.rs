//! Locking helpers shared by every module. A leaf: imports nothing from the crate.

/// Locks a std mutex, carrying on past poisoning: every mutex in this crate guards plain data
/// (maps, counters) that a panicking holder cannot leave half-updated in a way that matters,
/// and refusing all later callers would turn one panic into a dead cache or client.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
