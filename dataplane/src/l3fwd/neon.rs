//! aarch64 NEON twin of [`super::x4::sum4_scalar`]: the one's complement sums of four IPv4
//! headers at once.
use super::x4::Hdr;
use core::arch::aarch64::*;

/// Bit `k` set when header `k`'s sum folds to `0xffff`: its checksum is valid.
#[inline(always)]
pub(crate) fn valid4(h: [&Hdr; 4]) -> u32 {
    const BITS: [u32; 4] = [1, 2, 4, 8];
    let s = sums(h);
    // SAFETY: NEON is part of the aarch64 baseline; the load reads the 4-element array BITS,
    // the rest are register operations.
    unsafe { vaddvq_u32(vandq_u32(vceqq_u32(s, vdupq_n_u32(0xffff)), vld1q_u32(BITS.as_ptr()))) }
}

/// The four sums folded to 16 bits (the oracle test compares them with the portable loop's).
#[cfg(test)]
pub(crate) fn sum4(h: [&Hdr; 4]) -> [u16; 4] {
    let (s, mut out) = (sums(h), [0u32; 4]);
    // SAFETY: NEON is baseline; the store writes 4 u32 into a 4-element array.
    unsafe { vst1q_u32(out.as_mut_ptr(), s) };
    out.map(|s| ((s & 0xffff) + (s >> 16)) as u16)
}

/// Each 32-bit lane's two 16-bit words added (`x & 0xffff` plus `x >> 16`).
#[inline(always)]
fn fold(x: uint32x4_t) -> uint32x4_t {
    // SAFETY: NEON is part of the aarch64 baseline; register operations only.
    unsafe { vsraq_n_u32::<16>(vandq_u32(x, vdupq_n_u32(0xffff)), x) }
}

/// The four headers' sums folded once, one per 32-bit lane: each header's first 16 bytes as
/// eight words added pairwise into four lanes (`vpaddlq_u16`), two rounds of pairwise adds
/// (`vpaddq_u32`) leaving one total per header, each header's last 4 bytes added as one more
/// word pair — the exact sum, below `10 * 0xffff` — then one fold, which leaves at most
/// `0xffff + 9`: `0xffff` exactly when the sum is a nonzero multiple of `0xffff`, i.e. when
/// the checksum is valid.
#[inline(always)]
fn sums(h: [&Hdr; 4]) -> uint32x4_t {
    let tail: [u32; 4] = h.map(|h| u32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
    // SAFETY: NEON is part of the aarch64 baseline; every load reads the first 16 bytes of a
    // 20-byte array or the 4-element `tail`; the rest are register operations.
    let s = unsafe {
        let v = h.map(|h| vpaddlq_u16(vreinterpretq_u16_u8(vld1q_u8(h.as_ptr()))));
        let s = vpaddq_u32(vpaddq_u32(v[0], v[1]), vpaddq_u32(v[2], v[3]));
        vaddq_u32(s, vpaddlq_u16(vreinterpretq_u16_u32(vld1q_u32(tail.as_ptr()))))
    };
    fold(s)
}
