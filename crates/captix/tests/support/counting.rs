//! A counting global allocator for tests that bound allocation (the only unsafe code in the
//! repository; it forwards to `System`). Counts are per thread.
#![allow(unsafe_code)]
#![allow(dead_code)] // each test binary uses a part of it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn grow(size: usize) {
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    let _ = LIVE.try_with(|l| {
        let now = l.get() + size as i64;
        l.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn shrink(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get() - size as i64));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: forwards to the system allocator with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made by this thread so far.
pub fn allocations() -> u64 {
    COUNT.with(Cell::get)
}

/// Runs `f` and returns its result with the most memory it held at once, in bytes (this
/// thread's allocations only).
pub fn peak_bytes<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - start).max(0) as u64)
}

/// Bytes this thread holds now (allocated minus freed since it started).
pub fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}
