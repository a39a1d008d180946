//! aarch64 NEON twin of [`super::x4::sum4_scalar`]: the one's complement sums of four IPv4
//! headers at once.
use super::x4::{fold, Hdr};
use core::arch::aarch64::*;

/// Sums four 20-byte headers: each header's first 16 bytes as eight 16-bit words widened and
/// added pairwise into four 32-bit lanes (`vpaddlq_u16`), its last 4 bytes added as two
/// words, then three pairwise adds (`vpaddq_u32`) leave one total per header in one vector.
/// Same results as [`super::x4::sum4_scalar`].
#[inline(always)]
pub(crate) fn sum4(h: [&Hdr; 4]) -> [u16; 4] {
    // SAFETY: NEON is part of the aarch64 baseline; every load reads 16 bytes of a 20-byte
    // array and every store writes 4 u32 into a 4-element array.
    unsafe {
        let v = h.map(|h| vpaddlq_u16(vreinterpretq_u16_u8(vld1q_u8(h.as_ptr()))));
        let ab = vpaddq_u32(v[0], v[1]);
        let cd = vpaddq_u32(v[2], v[3]);
        let s = vpaddq_u32(ab, cd);
        let tail: [u32; 4] =
            h.map(|h| u32::from(u16::from_ne_bytes([h[16], h[17]])) + u32::from(u16::from_ne_bytes([h[18], h[19]])));
        let s = vaddq_u32(s, vld1q_u32(tail.as_ptr()));
        let mut out = [0u32; 4];
        vst1q_u32(out.as_mut_ptr(), s);
        out.map(fold)
    }
}
