//! The one scheduler task per cache: a heap of refresh and expiry deadlines (a few dozen bytes
//! per entry, not a task each), compacted so that evicted and replaced entries free their
//! memory, and the short jobs it spawns when a deadline is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, Weak};

use tokio::time::Instant;
use tracing::Instrument as _;

use super::refresh::Entry;
use super::shared::Shared;

/// The deadline heap is compacted when it holds this many deadlines, or twice as many as
/// after the last compaction, whichever is more.
const MIN_COMPACTION: usize = 64;

/// The deadlines of every entry, and whether a scheduler task is running to honour them.
#[derive(Default)]
pub(super) struct Schedule {
    pub(super) deadlines: BinaryHeap<Reverse<Deadline>>,
    pub(super) running: bool,
    compact_at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Action {
    Refresh,
    Expire,
}

/// Something to do to one entry at one time, if the entry still holds the same token.
pub(super) struct Deadline {
    pub(super) at: Instant,
    /// The entry's token generation when this was scheduled: a newer token makes it moot.
    pub(super) generation: u64,
    pub(super) action: Action,
    pub(super) entry: Weak<Entry>,
}

impl Deadline {
    /// Whether the deadline can still do something: its entry is alive and holds the token
    /// the deadline was made for.
    fn is_current(&self) -> bool {
        self.entry
            .upgrade()
            .is_some_and(|entry| entry.token_generation.load(Ordering::Acquire) == self.generation)
    }
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.generation, self.action).cmp(&(other.at, other.generation, other.action))
    }
}

impl Shared {
    pub(super) fn lock_schedule(&self) -> MutexGuard<'_, Schedule> {
        crate::sync::lock(&self.schedule)
    }

    /// Adds a deadline, starting the scheduler on the current runtime if none runs. Without
    /// a runtime nothing refreshes ahead, which is safe: the hit path checks expiry itself,
    /// and a miss fetches.
    pub(super) fn schedule(self: &Arc<Self>, deadline: Deadline) {
        let mut schedule = self.lock_schedule();
        let earliest = schedule
            .deadlines
            .peek()
            .is_none_or(|Reverse(first)| deadline.at < first.at);
        schedule.deadlines.push(Reverse(deadline));
        if schedule.deadlines.len() >= schedule.compact_at.max(MIN_COMPACTION) {
            // Evicted entries and replaced tokens leave deadlines behind, each holding its
            // entry's allocation through a `Weak`: drop them all, amortised O(1) per push.
            schedule.deadlines.retain(|Reverse(deadline)| deadline.is_current());
            schedule.compact_at = schedule.deadlines.len() * 2;
        }
        if schedule.running {
            drop(schedule);
            if earliest {
                self.wake.notify_one();
            }
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        schedule.running = true;
        drop(schedule);
        // The guard exists before the task is first polled: a runtime dropped before then
        // still marks the schedule as not running, so the next runtime starts a scheduler.
        runtime.spawn(scheduler(SchedulerGuard {
            shared: Arc::clone(self),
            armed: true,
        }));
    }
}

impl Shared {
    /// Drops the deadlines of entries no source or index holds any more (their allocations
    /// go with them) and wakes the scheduler, which ends if nothing is left to do.
    pub(super) fn forget_dropped_entries(&self) {
        let mut schedule = self.lock_schedule();
        schedule
            .deadlines
            .retain(|Reverse(deadline)| deadline.entry.strong_count() > 0);
        schedule.compact_at = schedule.deadlines.len() * 2;
        drop(schedule);
        self.wake.notify_one();
    }
}

/// Marks the schedule as not running if the scheduler task ends without saying so itself
/// (its runtime shut down), so that a later runtime starts a new one.
struct SchedulerGuard {
    shared: Arc<Shared>,
    armed: bool,
}

impl Drop for SchedulerGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock_schedule().running = false;
        }
    }
}

/// One task per cache: sleeps until the earliest deadline (or until an earlier one arrives),
/// then hands due deadlines to short-lived jobs. Ends when no deadline is left.
async fn scheduler(mut guard: SchedulerGuard) {
    let shared = Arc::clone(&guard.shared);
    loop {
        let (due, next) = {
            let mut schedule = shared.lock_schedule();
            let now = Instant::now();
            let mut due = Vec::new();
            while schedule.deadlines.peek().is_some_and(|Reverse(first)| first.at <= now) {
                if let Some(Reverse(deadline)) = schedule.deadlines.pop() {
                    due.push(deadline);
                }
            }
            let next = schedule.deadlines.peek().map(|Reverse(first)| first.at);
            if due.is_empty() && next.is_none() {
                schedule.running = false;
                guard.armed = false;
                return;
            }
            (due, next)
        };
        for deadline in due {
            if let Some(entry) = deadline.entry.upgrade() {
                tokio::spawn(run_deadline(entry, deadline.generation, deadline.action));
            }
        }
        if let Some(at) = next {
            // A notification sent before this wait starts is kept by `Notify`, so an earlier
            // deadline added in between is not missed.
            let _ = tokio::time::timeout_at(at, shared.wake.notified()).await;
        }
    }
}

/// Refreshes, or retires, one entry's token if it is still the one the deadline was for.
async fn run_deadline(entry: Arc<Entry>, generation: u64, action: Action) {
    let mut state = entry.refresh.lock().await;
    if entry.token_generation.load(Ordering::Acquire) != generation {
        return; // a newer token was installed and scheduled its own deadline
    }
    match action {
        Action::Expire => {
            tracing::debug!(key = ?entry.key, "token expired without a refresh");
            entry.vacate(super::refresh::Vacancy::Expired);
        }
        Action::Refresh if !entry.read.swap(false, Ordering::AcqRel) => {
            // Nobody asked for the token since it was fetched: refreshing it would cost a
            // request for nothing (100k idle users would cost B2C ~55 requests/s for ever).
            tracing::debug!(key = ?entry.key, "idle since the last refresh: letting the token expire");
            entry.schedule_expiry(generation);
        }
        Action::Refresh => {
            let Some(credential) = entry.credential() else {
                return;
            };
            tracing::debug!(key = ?entry.key, "proactive refresh");
            super::stats::Counters::add(&entry.shared.counters.refreshes);
            let span = super::refresh::fetch_span(&entry.key, "proactive_refresh");
            let result = Box::pin(entry.fetch_shared(&mut state, &credential))
                .instrument(span.clone())
                .await;
            super::refresh::record_outcome(&span, &result);
            if let Err(error) = result {
                super::stats::Counters::add(&entry.shared.counters.refresh_failures);
                entry.schedule_retry(&mut state, generation, &error);
            }
        }
    }
}
