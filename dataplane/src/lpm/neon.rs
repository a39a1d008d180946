//! aarch64 NEON burst lookups: four IPv4 addresses per step. NEON has no gather, so the
//! table loads stay scalar; the vector unit computes the indices and the hit/miss select.
use super::lpm4::{is_ext, resolve, EXT, NH_MASK};
use super::MISS;
use core::arch::aarch64::*;

/// NEON twin of [`super::Lpm4::lookup_bulk_scalar`] (same contract).
///
/// # Safety
/// The CPU must have NEON (every aarch64 CPU that Linux runs on does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn lpm4_bulk_neon(tbl24: &[u32], tbl8: &[u32], ips: &[u32], out: &mut [u32]) -> usize {
    let n = ips.len().min(out.len());
    let chunks = n / 4;
    let mut hits = 0usize;
    for &ip in ips.iter().take(8) {
        crate::arch::prefetch(tbl24.as_ptr().wrapping_add((ip >> 8) as usize));
    }
    for c in 0..chunks {
        let k = c * 4;
        for &ip in ips.iter().skip(k + 8).take(4) {
            crate::arch::prefetch(tbl24.as_ptr().wrapping_add((ip >> 8) as usize));
        }
        let mut lanes = [0u32; 4];
        lanes.copy_from_slice(&ips[k..k + 4]);
        // SAFETY: reads 4 u32 from a 4-element array.
        let v = unsafe { vld1q_u32(lanes.as_ptr()) };
        let idx = vshrq_n_u32::<8>(v);
        let mut ix = [0u32; 4];
        // SAFETY: writes 4 u32 into a 4-element array.
        unsafe { vst1q_u32(ix.as_mut_ptr(), idx) };
        let mut ent = [0u32; 4];
        for l in 0..4 {
            ent[l] = tbl24.get(ix[l] as usize).copied().unwrap_or(MISS);
        }
        // SAFETY: reads 4 u32 from a 4-element array.
        let e = unsafe { vld1q_u32(ent.as_ptr()) };
        // Extended: bit 31 clear and bit 30 set, i.e. `e as i32 > EXT - 1` (signed compare).
        let ext = vcgtq_s32(vreinterpretq_s32_u32(e), vdupq_n_s32(EXT as i32 - 1));
        let e = if vmaxvq_u32(ext) != 0 {
            let lo = vandq_u32(v, vdupq_n_u32(0xff));
            let i8v = vorrq_u32(vshlq_n_u32::<8>(vandq_u32(e, vdupq_n_u32(NH_MASK))), lo);
            let mut i8a = [0u32; 4];
            // SAFETY: writes 4 u32 into a 4-element array.
            unsafe { vst1q_u32(i8a.as_mut_ptr(), i8v) };
            for l in 0..4 {
                if is_ext(ent[l]) {
                    ent[l] = tbl8.get(i8a[l] as usize).copied().unwrap_or(MISS);
                }
            }
            // SAFETY: reads 4 u32 from a 4-element array.
            unsafe { vld1q_u32(ent.as_ptr()) }
        } else {
            e
        };
        // Each resolved entry is the answer (next hop, or all ones = MISS); bit 31 is set
        // only in MISS, so it counts the misses.
        hits += 4 - vaddvq_u32(vshrq_n_u32::<31>(e)) as usize;
        // SAFETY: k + 4 <= n <= out.len(); vst1q_u32 has no alignment requirement.
        unsafe { vst1q_u32(out.as_mut_ptr().add(k), e) };
    }
    for i in chunks * 4..n {
        let r = resolve(tbl24, tbl8, ips[i]);
        hits += (r != MISS) as usize;
        out[i] = r;
    }
    hits
}
