//! aarch64 kernels: Armv8 CRC32 instructions (`crc32cx`) for CRC32C, and the transposed
//! Toeplitz with NEON: 16 packets per pass, rows transposed with a `zip1`/`zip2` network,
//! nibbles looked up with `tbl` in per-position tables, one result byte plane per table
//! (the same scheme as the x86 `pshufb` kernel, see `x86.rs`).
#![allow(unsafe_code)]

use super::{scalar::Pattern16, scalar::SCREEN_AT, Classified, ClassifyConfig, Kernel, Rows, CHUNK};
use core::arch::aarch64::*;

/// CRC32C of `b` with the Armv8 CRC32 instructions (`N` is a multiple of 4: hash inputs
/// are 0, 8, 12, 32 or 36 bytes long).
///
/// # Safety
/// The CPU must support the CRC extension.
#[inline]
#[target_feature(enable = "crc")]
unsafe fn crc32c_hw<const N: usize>(b: &[u8; N]) -> u32 {
    let mut c = !0u32;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        c = __crc32cd(c, u64::from_le_bytes(x));
    }
    if let Some(w) = words.remainder().first_chunk::<4>() {
        c = __crc32cw(c, u32::from_le_bytes(*w));
    }
    !c
}

/// True when the 16 bytes `w` of `h` from [`SCREEN_AT`] match `pat`: `(w ^ want) & mask` in one vector, then its largest
/// 32-bit lane (`umaxv`) tested for zero — the twin of the x86 `ptest` (`x86::matches16_sse41`).
#[inline(always)]
fn matches16(h: &[u8; 60], pat: &Pattern16) -> bool {
    let w: &[u8; 16] = match h.get(SCREEN_AT..).and_then(|t| t.first_chunk()) {
        Some(w) => w,
        None => unreachable!("SCREEN_AT + 16 <= 60"),
    };
    // SAFETY: NEON is part of the aarch64 baseline; each load reads a 16-byte array.
    unsafe {
        let x = vld1q_u8(w.as_ptr());
        let d = vandq_u8(veorq_u8(x, vld1q_u8(pat.want.as_ptr())), vld1q_u8(pat.mask.as_ptr()));
        vmaxvq_u32(vreinterpretq_u32_u8(d)) == 0
    }
}

#[inline(always)]
fn zip8(x: uint8x16_t, y: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: NEON is part of the aarch64 baseline; zips touch no memory.
    unsafe { (vzip1q_u8(x, y), vzip2q_u8(x, y)) }
}

#[inline(always)]
fn zip16(x: uint8x16_t, y: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: as in `zip8`.
    unsafe {
        let (x, y) = (vreinterpretq_u16_u8(x), vreinterpretq_u16_u8(y));
        (vreinterpretq_u8_u16(vzip1q_u16(x, y)), vreinterpretq_u8_u16(vzip2q_u16(x, y)))
    }
}

#[inline(always)]
fn zip32(x: uint8x16_t, y: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: as in `zip8`.
    unsafe {
        let (x, y) = (vreinterpretq_u32_u8(x), vreinterpretq_u32_u8(y));
        (vreinterpretq_u8_u32(vzip1q_u32(x, y)), vreinterpretq_u8_u32(vzip2q_u32(x, y)))
    }
}

#[inline(always)]
fn zip64(x: uint8x16_t, y: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: as in `zip8`.
    unsafe {
        let (x, y) = (vreinterpretq_u64_u8(x), vreinterpretq_u64_u8(y));
        (vreinterpretq_u8_u64(vzip1q_u64(x, y)), vreinterpretq_u8_u64(vzip2q_u64(x, y)))
    }
}

/// Toeplitz over rows `base..base + 16`, input bytes `0..max_len`.
#[inline(always)]
fn toeplitz16(cfg: &ClassifyConfig, rows: &Rows, base: usize, max_len: usize, out: &mut [u32; CHUNK]) {
    let planes = &cfg.rss.planes;
    let max_len = max_len.min(super::MAX_HASH_INPUT);
    // SAFETY: NEON is baseline on aarch64; every load reads a 16-byte array or slice.
    unsafe {
        let mask = vdupq_n_u8(0x0f);
        let mut acc = [vdupq_n_u8(0); 4];
        let mut blk = 0;
        while blk * 16 < max_len {
            let mut r = [vdupq_n_u8(0); 16];
            for (i, v) in r.iter_mut().enumerate() {
                let src = &rows.row[(base + i) % CHUNK][blk * 16..blk * 16 + 16];
                *v = vld1q_u8(src.as_ptr());
            }
            let mut a = [vdupq_n_u8(0); 16];
            for i in 0..8 {
                (a[i], a[8 + i]) = zip8(r[2 * i], r[2 * i + 1]);
            }
            let mut b = [vdupq_n_u8(0); 16];
            for h in 0..2 {
                for q in 0..4 {
                    (b[h * 8 + q], b[h * 8 + 4 + q]) = zip16(a[h * 8 + 2 * q], a[h * 8 + 2 * q + 1]);
                }
            }
            let mut c = [vdupq_n_u8(0); 16];
            for hg in 0..4 {
                for w in 0..2 {
                    (c[hg * 4 + w], c[hg * 4 + 2 + w]) = zip32(b[hg * 4 + 2 * w], b[hg * 4 + 2 * w + 1]);
                }
            }
            let mut d = [vdupq_n_u8(0); 16];
            for k in 0..8 {
                (d[2 * k], d[2 * k + 1]) = zip64(c[2 * k], c[2 * k + 1]);
            }
            for (j, &v) in d.iter().enumerate() {
                let p = blk * 16 + j;
                if p >= max_len {
                    break;
                }
                let hi = vshrq_n_u8::<4>(v);
                let lo = vandq_u8(v, mask);
                for (k, a) in acc.iter_mut().enumerate() {
                    let th = vld1q_u8(planes[2 * p][k].as_ptr());
                    let tl = vld1q_u8(planes[2 * p + 1][k].as_ptr());
                    *a = veorq_u8(*a, veorq_u8(vqtbl1q_u8(th, hi), vqtbl1q_u8(tl, lo)));
                }
            }
            blk += 1;
        }
        let (x01l, x01h) = zip8(acc[0], acc[1]);
        let (x23l, x23h) = zip8(acc[2], acc[3]);
        let (o0, o1) = zip16(x01l, x23l);
        let (o2, o3) = zip16(x01h, x23h);
        for (g, v) in [o0, o1, o2, o3].iter().enumerate() {
            let dst = &mut out[(base + 4 * g) % CHUNK..][..4];
            vst1q_u32(dst.as_mut_ptr(), vreinterpretq_u32_u8(*v));
        }
    }
}

pub(crate) struct NeonKernel;

impl Kernel for NeonKernel {
    const BATCHED_TOEPLITZ: bool = true;

    #[inline(always)]
    unsafe fn crc32c<const N: usize>(b: &[u8; N]) -> u32 {
        // SAFETY: the caller guarantees the CRC extension.
        unsafe { crc32c_hw(b) }
    }

    const SCREEN: bool = true;

    #[inline(always)]
    unsafe fn matches16(h: &[u8; 60], pat: &Pattern16) -> bool {
        matches16(h, pat)
    }

    #[inline(always)]
    unsafe fn hash(cfg: &ClassifyConfig, rows: &Rows, m: usize, max_len: usize, out: &mut [u32; CHUNK]) {
        toeplitz16(cfg, rows, 0, max_len, out);
        if m > 16 {
            toeplitz16(cfg, rows, 16, max_len, out);
        }
    }
}

/// # Safety
/// The CPU must support the CRC extension.
#[target_feature(enable = "crc")]
pub(crate) unsafe fn run_neon<T: super::Frame>(items: &[T], cfg: &ClassifyConfig, out: &mut [Classified]) {
    // SAFETY: the caller guarantees the kernel's features.
    unsafe { super::run::<T, NeonKernel>(items, cfg, out) }
}
