//! Route lookup for l3fwd: longest-prefix match for IPv4 ([`Lpm4`], DIR-24-8 like DPDK's
//! `rte_lpm`) and IPv6 ([`Lpm6`], a 24-bit first level then 8-bit strides like `rte_lpm6`),
//! an exact-match flow table ([`EmTable`], bucketized cuckoo hash like `rte_hash`), and a
//! parser for DPDK l3fwd route files ([`rules`]).
//!
//! All tables allocate their memory once, at construction, from a [`Lpm4Config`],
//! [`Lpm6Config`] or [`EmConfig`]; an insert into a full table returns an error naming the
//! limit and the setting that raises it, and leaves the table as it was. Lookups never
//! allocate, never lock and never panic. A miss in a burst lookup is the value [`MISS`].
//!
//! Tables are built by one writer (`&mut self`) and read by many (`&self`); to change the
//! routes of a running data path, build a new table aside (for example with
//! [`Lpm4::from_routes`]) and swap it in.
#![allow(unsafe_code)]

pub mod em;
pub mod lpm4;
pub mod lpm6;
pub mod rules;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use em::{EmConfig, EmError, EmKey, EmTable, Ipv4FiveTuple, Ipv6FiveTuple};
pub use lpm4::{Lpm4, Lpm4Config, Lpm4Error};
pub use lpm6::{Lpm6, Lpm6Config, Lpm6Error};
pub use rules::{EmRoute4, EmRoute6, Route4, Route6, RuleError, RuleFileError};

/// The largest next hop the LPM tables store: next hops are 24-bit values.
pub const MAX_NEXT_HOP: u32 = 0x00FF_FFFF;

/// Written by the burst lookups for an address (or key) that has no route.
pub const MISS: u32 = u32::MAX;

/// Which burst-lookup implementation a table uses, chosen once at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkImpl {
    /// Portable scalar code: independent loads, four addresses per step. The default on
    /// x86_64 (see [`BulkImpl::detect`]).
    Scalar,
    /// x86_64 AVX2 gathers, eight addresses at a time. Kept for comparison and for CPUs
    /// with fast gathers; choose it with [`Lpm4::set_bulk_impl`].
    Avx2,
    /// aarch64 NEON, four addresses at a time.
    Neon,
}

impl BulkImpl {
    /// The default implementation for this CPU: NEON on aarch64, scalar elsewhere. On
    /// x86_64 the scalar loop beats the AVX2 gathers (`vpgatherdd` issues its eight loads
    /// as micro-ops that crowd the reorder window: about 0.7× the scalar speed on the AMD
    /// EPYC Zen 4 of `benches/LPM_RESULTS.md`), so AVX2 is not chosen automatically.
    pub fn detect() -> Self {
        #[cfg(target_arch = "aarch64")]
        {
            return BulkImpl::Neon;
        }
        #[allow(unreachable_code)]
        BulkImpl::Scalar
    }

    /// Whether this CPU can run `self`.
    pub fn is_supported(self) -> bool {
        match self {
            BulkImpl::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            BulkImpl::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "aarch64")]
            BulkImpl::Neon => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// Allocates a zeroed table of `n` words once, asking Linux for transparent huge pages so
/// that random lookups into tens of megabytes do not miss the TLB on every access.
pub(crate) fn alloc_zeroed<T: Copy + Default>(n: usize) -> Box<[T]> {
    let b = vec![T::default(); n].into_boxed_slice();
    advise_huge(b.as_ptr() as *const u8, std::mem::size_of_val(&*b));
    b
}

/// Allocates a table of `n` words all equal to `value` once, advised for transparent huge
/// pages before the first write (as [`alloc_zeroed`]), then written in full.
pub(crate) fn alloc_filled(n: usize, value: u32) -> Box<[u32]> {
    let mut b = alloc_zeroed::<u32>(n);
    b.fill(value);
    b
}

/// Marks the 2 MiB-aligned part of `[p, p + len)` with `MADV_HUGEPAGE` (a hint; errors are
/// ignored because the table works the same without huge pages).
fn advise_huge(p: *const u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (p as usize).next_multiple_of(HUGE);
        let end = (p as usize + len) & !(HUGE - 1);
        if end > start {
            // SAFETY: [start, end) lies inside the live allocation we own; madvise with
            // MADV_HUGEPAGE changes no contents and no mapping, only the paging policy.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, len);
}

/// Network mask of `depth` leading ones in a 32-bit address (`depth` ≤ 32).
#[inline]
pub(crate) fn mask4(depth: u8) -> u32 {
    if depth == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(depth))
    }
}

/// Network mask of `depth` leading ones in a 128-bit address (`depth` ≤ 128).
#[inline]
pub(crate) fn mask6(depth: u8) -> u128 {
    if depth == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(depth))
    }
}

/// A small fast hasher for the control-path rule maps (keys are already well mixed
/// integers; SipHash would dominate the time of adding a million routes).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;
