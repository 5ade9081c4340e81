//! Counted measurements for `mxsim bench` and the allocation guard test: a counting allocator
//! with per-thread counters, and the CPU time of the calling thread.
//!
//! Library crates never install the allocator; a binary does (`mxsim`, and the test binary
//! `tests/it`), with `#[global_allocator] static ALLOCATOR: Counting = Counting;`. The counters
//! are thread-local, so tests running on other threads of the same process never disturb a
//! count, and a count is a number of calls, never a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting the allocations (and reallocations) made by each thread and
/// the bytes they asked for.
pub struct Counting;

fn count(size: usize) {
    // `try_with`: a thread being torn down has no counters left; its allocations go uncounted.
    let _ = ALLOCATIONS.try_with(|allocations| allocations.set(allocations.get() + 1));
    let _ = BYTES.try_with(|bytes| bytes.set(bytes.get() + size as u64));
}

#[allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; every call goes to the system allocator unchanged"
)]
// SAFETY: each method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; counting touches only const-initialised thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`; `new_size` is the caller's, unchanged.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

/// Allocations made so far by the calling thread and the bytes they asked for (a reallocation
/// counts as one allocation of its new size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allocations {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub count: u64,
    /// Bytes those calls asked for.
    pub bytes: u64,
}

impl Allocations {
    /// The calling thread's counters now.
    pub fn now() -> Allocations {
        Allocations {
            count: ALLOCATIONS.with(Cell::get),
            bytes: BYTES.with(Cell::get),
        }
    }

    /// What was counted between `earlier` and `self`.
    pub fn since(self, earlier: Allocations) -> Allocations {
        Allocations {
            count: self.count - earlier.count,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// Whether [`Counting`] is the process's global allocator: a box allocated here moved the
/// calling thread's counter.
pub fn counting() -> bool {
    let before = Allocations::now();
    let probe = std::hint::black_box(Box::new(0u64));
    drop(probe);
    Allocations::now().count > before.count
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time, it does
/// not grow while other processes hold the core. `None` where the clock is not available.
pub fn thread_cpu_time() -> Option<std::time::Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(
        unsafe_code,
        reason = "clock_gettime is a C call; it writes only the timespec it is given"
    )]
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return None;
    }
    Some(std::time::Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_moves_forward() {
        let first = thread_cpu_time().expect("Linux has a thread CPU clock");
        let mut sum = 0u64;
        for value in 0..1_000_000u64 {
            sum = std::hint::black_box(sum.wrapping_add(value));
        }
        let second = thread_cpu_time().expect("Linux has a thread CPU clock");
        assert!(second >= first, "{sum}");
    }

    #[test]
    fn without_the_allocator_nothing_is_counted() {
        // This test binary does not install `Counting`.
        assert!(!counting());
    }
}
