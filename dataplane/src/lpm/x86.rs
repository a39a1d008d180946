//! x86_64 AVX2 burst lookups: blocks of 32 IPv4 addresses, eight per `vpgatherdd`.
use super::lpm4::{resolve, EXT, NH_MASK};
use super::MISS;
use core::arch::x86_64::*;

/// AVX2 twin of [`super::Lpm4::lookup_bulk_scalar`]: per block of 32 addresses, gathers
/// the tbl24 entries (4 × 8), then the tbl8 entries of the lanes that point to a group,
/// while the next block's tbl24 lines are being prefetched. A tail shorter than a block
/// goes through the scalar code.
///
/// # Safety
/// The CPU must support AVX2. `tbl24` must have 2^24 entries and every extended entry of it
/// (see [`super::lpm4`]) must name a group `g` with `(g + 1) * 256 <= tbl8.len() < 2^31` (the `Lpm4`
/// invariants). `ips` and `out` must have the same length.
#[target_feature(enable = "avx2")]
#[allow(clippy::needless_range_loop)] // lanes of v, e and out move together
pub(crate) unsafe fn lpm4_bulk_avx2(tbl24: &[u32], tbl8: &[u32], ips: &[u32], out: &mut [u32]) -> usize {
    debug_assert_eq!(tbl24.len(), 1 << 24);
    debug_assert_eq!(ips.len(), out.len());
    /// Lanes per block: four gathers of eight.
    const BLOCK: usize = 32;
    let n = ips.len().min(out.len());
    let blocks = n / BLOCK;
    let mut hits = 0usize;
    // Extended: bit 31 clear and bit 30 set, i.e. `e as i32 > EXT - 1` (signed compare).
    let v_ext_min1 = _mm256_set1_epi32(EXT as i32 - 1);
    let v_nh = _mm256_set1_epi32(NH_MASK as i32);
    let v_lo = _mm256_set1_epi32(0xff);
    let t24 = tbl24.as_ptr() as *const i32;
    let t8 = tbl8.as_ptr() as *const i32;
    for &ip in ips.iter().take(BLOCK) {
        crate::arch::prefetch(t24.wrapping_add((ip >> 8) as usize));
    }
    for b in 0..blocks {
        let k = b * BLOCK;
        // The next block's tbl24 lines load while this block waits for its own.
        for &ip in ips.iter().skip(k + BLOCK).take(BLOCK) {
            crate::arch::prefetch(t24.wrapping_add((ip >> 8) as usize));
        }
        let mut v = [_mm256_setzero_si256(); 4];
        let mut e = [_mm256_setzero_si256(); 4];
        // Level 1 for the whole block: four independent gathers whose misses overlap.
        for c in 0..4 {
            // SAFETY: k + 8c + 8 <= k + BLOCK <= n <= ips.len(); loadu needs no alignment.
            v[c] = unsafe { _mm256_loadu_si256(ips.as_ptr().add(k + 8 * c) as *const __m256i) };
            // SAFETY: every index is ip >> 8 < 2^24 = tbl24.len(); AVX2 is enabled.
            e[c] = unsafe { _mm256_i32gather_epi32::<4>(t24, _mm256_srli_epi32::<8>(v[c])) };
        }
        // Level 2 for the lanes that point to a group, again four overlapping gathers; a
        // zero mask loads nothing, and skipping the branch avoids its mispredictions.
        for c in 0..4 {
            let is_ext = _mm256_cmpgt_epi32(e[c], v_ext_min1);
            let idx8 =
                _mm256_or_si256(_mm256_slli_epi32::<8>(_mm256_and_si256(e[c], v_nh)), _mm256_and_si256(v[c], v_lo));
            // SAFETY: only lanes whose entry is extended are loaded; their index is
            // g * 256 + (ip & 0xff) < tbl8.len() < 2^31 by the table invariant.
            e[c] = unsafe { _mm256_mask_i32gather_epi32::<4>(e[c], t8, idx8, is_ext) };
        }
        for c in 0..4 {
            // Each resolved entry is the answer (next hop, or all ones = MISS); bit 31 is set
            // only in MISS, so the sign mask counts the misses.
            hits += 8 - (_mm256_movemask_ps(_mm256_castsi256_ps(e[c])) as u32).count_ones() as usize;
            // SAFETY: k + 8c + 8 <= n <= out.len(); storeu needs no alignment.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(k + 8 * c) as *mut __m256i, e[c]) };
        }
    }
    for i in blocks * BLOCK..n {
        let r = resolve(tbl24, tbl8, ips[i]);
        hits += (r != MISS) as usize;
        out[i] = r;
    }
    hits
}
