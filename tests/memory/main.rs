//! The tests that watch the process's heap, in a binary of their own: its global allocator
//! sees every allocation of the process, so no other test may run beside them. It counts live
//! bytes (eviction frees memory) and, while armed, scans every freed block for a piece of a
//! token (secrets are zeroized before their memory is returned). The tests take turns.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicPtr, AtomicUsize, Ordering};

#[path = "../support/mod.rs"]
mod support;

mod cache_memory;
#[cfg(all(feature = "tower", feature = "tonic"))]
mod zeroized_on_free;

/// Bytes allocated and not yet freed, process-wide.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// The bytes looked for in freed blocks (a leaked copy, never freed itself); length 0 when
/// the scanner is off.
static NEEDLE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NEEDLE_LEN: AtomicUsize = AtomicUsize::new(0);
/// Freed blocks that held the needle.
static FOUND: AtomicUsize = AtomicUsize::new(0);

/// The counters are process-wide: the tests in this binary take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Watching;

// SAFETY: every block comes from the system allocator zeroed, so a freed block's bytes are
// always initialised when they are read; the needle is leaked, so it outlives every read.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        let len = NEEDLE_LEN.load(Ordering::Acquire);
        if len > 0 && layout.size() >= len {
            let (block, needle) = unsafe {
                (
                    std::slice::from_raw_parts(ptr, layout.size()),
                    std::slice::from_raw_parts(NEEDLE.load(Ordering::Acquire), len),
                )
            };
            if block.windows(len).any(|window| window == needle) {
                FOUND.fetch_add(1, Ordering::Relaxed);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;
