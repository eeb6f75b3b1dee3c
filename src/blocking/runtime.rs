//! The background runtime a blocking handle owns, and the one rule of waiting on it: never
//! from inside an async runtime.

use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A tokio runtime with one worker thread, shut down when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Background {
    inner: Arc<Owned>,
}

struct Owned(Option<tokio::runtime::Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        // Not `Runtime::drop`, which panics when the last handle goes away inside an async
        // context (a blocking handle dropped in a task): stop without waiting.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Background {
    pub(super) fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("b2c-token")
            .enable_all()
            .build()
            .map_err(|e| Error::config(format!("cannot start the blocking API's background thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Owned(Some(runtime))),
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        // Taken only in `drop`, when no handle is left to call this.
        self.inner
            .0
            .as_ref()
            .unwrap_or_else(|| unreachable!("the runtime lives as long as its handles"))
    }

    /// Runs `future` to completion on this thread, its spawned work (connections, refreshes)
    /// on the background worker; refused on any thread inside an async runtime's context,
    /// where parking it would stall that runtime's other tasks (tokio would panic). tokio's
    /// `spawn_blocking` threads are refused too: tokio offers no public way to tell them from
    /// a worker, and an error on both beats a panic on one.
    pub(super) fn wait<F: Future>(&self, future: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInsideAsyncRuntime);
        }
        Ok(self.runtime().block_on(future))
    }

    /// Runs `f` in the runtime's context: what it spawns (a store removal, the invalidation
    /// listener) lands there, not nowhere for want of a runtime on the caller's thread.
    pub(super) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.runtime().enter();
        f()
    }
}
