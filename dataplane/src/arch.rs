//! Per-architecture primitives: cycle counter, prefetch, spin-loop hint, cache-line size.
//!
//! x86_64 reads the TSC (`rdtsc`), aarch64 the generic timer (`cntvct_el0`); both tick at a
//! constant rate that [`cycles_per_sec`] measures once. Other targets fall back to a
//! monotonic clock in nanoseconds.
#![allow(unsafe_code)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Padding used to keep producer and consumer state on separate lines: 128 bytes covers the
/// adjacent-line prefetcher of x86 and the 128-byte lines of Neoverse/Apple cores.
pub const CACHE_LINE_PAD: usize = 128;

/// Reads the free-running cycle counter (TSC on x86_64, CNTVCT_EL0 on aarch64).
#[inline(always)]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: CNTVCT_EL0 is readable from EL0 on Linux (the kernel enables it for the vDSO).
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// The rate of [`cycles`] in ticks per second, measured once (about 20 ms) and cached.
pub fn cycles_per_sec() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        #[cfg(target_arch = "aarch64")]
        {
            let f: u64;
            // SAFETY: CNTFRQ_EL0 is readable from EL0 and holds the timer frequency.
            unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
            if f != 0 {
                return f;
            }
        }
        let t0 = Instant::now();
        let c0 = cycles();
        std::thread::sleep(Duration::from_millis(20));
        let c1 = cycles();
        let ns = t0.elapsed().as_nanos().max(1) as u64;
        ((c1.wrapping_sub(c0) as u128 * 1_000_000_000u128) / ns as u128).max(1) as u64
    })
}

/// Converts a duration in microseconds to [`cycles`] ticks.
pub fn us_to_cycles(us: u64) -> u64 {
    (cycles_per_sec() as u128 * us as u128 / 1_000_000) as u64
}

/// Prefetches the cache line holding `p` into all cache levels. Never faults.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: prefetch is a hint; it never faults, even on an invalid address.
        unsafe { core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0) }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: PRFM is a hint; it never faults, even on an invalid address.
        unsafe { core::arch::asm!("prfm pldl1keep, [{}]", in(reg) p, options(nostack, readonly)) }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Busy-wait hint (`pause` / `yield`).
#[inline(always)]
pub fn spin_hint() {
    core::hint::spin_loop();
}
