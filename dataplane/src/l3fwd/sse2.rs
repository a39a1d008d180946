//! x86_64 SSE2 twin of [`super::x4::sum4_scalar`]: the one's complement sums of four IPv4
//! headers at once (SSE2 is part of the x86_64 baseline, so no run-time detection).
use super::x4::{fold, Hdr};
use core::arch::x86_64::*;

/// Sums four 20-byte headers: each header's first 16 bytes as eight 16-bit words widened to
/// 32 bits and added into four lanes, the four headers' lanes transposed and added so that
/// one vector holds a total per header, then each header's last 4 bytes added as two words.
/// Same results as [`super::x4::sum4_scalar`].
#[inline(always)]
pub(crate) fn sum4(h: [&Hdr; 4]) -> [u16; 4] {
    // The last 4 bytes of a header, as the sum of its two 16-bit words in memory order.
    let tail = |h: &Hdr| u32::from(u16::from_ne_bytes([h[16], h[17]])) + u32::from(u16::from_ne_bytes([h[18], h[19]]));
    // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 bytes of a 20-byte
    // array (unaligned loads) and the store writes 16 bytes into a 4-element u32 array.
    unsafe {
        let z = _mm_setzero_si128();
        let w = h.map(|h| {
            let v = _mm_loadu_si128(h.as_ptr().cast());
            _mm_add_epi32(_mm_unpacklo_epi16(v, z), _mm_unpackhi_epi16(v, z))
        });
        // [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c and d.
        let ab = _mm_add_epi32(_mm_unpacklo_epi32(w[0], w[1]), _mm_unpackhi_epi32(w[0], w[1]));
        let cd = _mm_add_epi32(_mm_unpacklo_epi32(w[2], w[3]), _mm_unpackhi_epi32(w[2], w[3]));
        // [a, b, c, d]
        let s = _mm_add_epi32(_mm_unpacklo_epi64(ab, cd), _mm_unpackhi_epi64(ab, cd));
        let t = h.map(tail);
        let s = _mm_add_epi32(s, _mm_loadu_si128(t.as_ptr().cast()));
        let mut out = [0u32; 4];
        _mm_storeu_si128(out.as_mut_ptr().cast(), s);
        out.map(fold)
    }
}
