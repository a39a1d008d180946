//! x86_64 SSE2 twin of [`super::x4::sum4_scalar`]: the one's complement sums of four IPv4
//! headers at once (SSE2 is part of the x86_64 baseline, so no run-time detection).
use super::x4::Hdr;
use core::arch::x86_64::*;

/// Bit `k` set when header `k`'s sum folds to `0xffff`: its checksum is valid.
#[inline(always)]
pub(crate) fn valid4(h: [&Hdr; 4]) -> u32 {
    let s = sums(h);
    // SAFETY: SSE2 is part of the x86_64 baseline; register operations only.
    unsafe { _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(s, _mm_set1_epi32(0xffff)))) as u32 }
}

/// The four sums folded to 16 bits (the oracle test compares them with the portable loop's).
#[cfg(test)]
pub(crate) fn sum4(h: [&Hdr; 4]) -> [u16; 4] {
    let (s, mut out) = (sums(h), [0u32; 4]);
    // SAFETY: SSE2 is baseline; the store writes 16 bytes into a 4-element u32 array.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), s) };
    out.map(|s| ((s & 0xffff) + (s >> 16)) as u16)
}

/// Each 32-bit lane's two 16-bit words added, minus `0x10000`: `pmaddwd` multiplies signed
/// words, so each word is first biased by `0x8000` (`w ^ 0x8000` is `w - 0x8000` read as
/// signed) and the pair's sum comes out `0x10000` low, exactly.
#[inline(always)]
fn pairs(v: __m128i) -> __m128i {
    // SAFETY: SSE2 is part of the x86_64 baseline; register operations only.
    unsafe { _mm_madd_epi16(_mm_xor_si128(v, _mm_set1_epi16(i16::MIN)), _mm_set1_epi16(1)) }
}

/// The four headers' sums folded once, one per 32-bit lane: each header's first 16 bytes as
/// four word pairs ([`pairs`]), the four headers' lanes transposed and added so that one
/// vector holds a total per header, each header's last 4 bytes added as a fifth pair, the
/// five pairs' bias (`5 * 0x10000`) given back — the exact sum, below `10 * 0xffff` — then
/// one fold, which leaves at most `0xffff + 9`: `0xffff` exactly when the sum is a nonzero
/// multiple of `0xffff`, i.e. when the checksum is valid. All in vector registers.
#[inline(always)]
fn sums(h: [&Hdr; 4]) -> __m128i {
    let tail = |h: &Hdr| i32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
    // SAFETY: SSE2 is part of the x86_64 baseline; every load reads the first 16 bytes of a
    // 20-byte array (unaligned loads); the rest are register operations.
    unsafe {
        let w = h.map(|h| pairs(_mm_loadu_si128(h.as_ptr().cast())));
        // [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c and d.
        let ab = _mm_add_epi32(_mm_unpacklo_epi32(w[0], w[1]), _mm_unpackhi_epi32(w[0], w[1]));
        let cd = _mm_add_epi32(_mm_unpacklo_epi32(w[2], w[3]), _mm_unpackhi_epi32(w[2], w[3]));
        // [a, b, c, d], with the tails and the bias.
        let s = _mm_add_epi32(_mm_unpacklo_epi64(ab, cd), _mm_unpackhi_epi64(ab, cd));
        let t = pairs(_mm_set_epi32(tail(h[3]), tail(h[2]), tail(h[1]), tail(h[0])));
        let s = _mm_add_epi32(_mm_add_epi32(s, t), _mm_set1_epi32(5 << 16));
        _mm_add_epi32(_mm_and_si128(s, _mm_set1_epi32(0xffff)), _mm_srli_epi32::<16>(s))
    }
}
